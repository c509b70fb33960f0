// kafkajs against a running Sluice broker: create topics with the admin
// client, produce keyed records with headers under gzip and snappy (the
// codecs kafkajs can use without native add-ons), read them back and
// compare exactly.
//
// Usage: node kafkajs_check.js HOST:PORT[,HOST:PORT...]
//
// Reading back: this check reads with kafkajs's own Fetch request and
// record decoding (its cluster/broker layer, what its group consumer calls
// underneath), so it tests produce/fetch alone; kafkajs_group_check.js
// covers its normal consumer.run group consumer.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec

const bootstrap = process.argv[2]
if (!bootstrap) {
  console.error('usage: node kafkajs_check.js HOST:PORT')
  process.exit(2)
}

const N = 200
const PARTITIONS = 3
const DEADLINE_MS = 60000

// Replication of the topics this check creates: run.sh's cluster pass sets
// SLUICE_COMPAT_REPLICATION_FACTOR=3 and SLUICE_COMPAT_MIN_INSYNC_REPLICAS=2;
// by default (one broker) 1 and the broker's min.insync.replicas.
const REPLICATION_FACTOR = Number(process.env.SLUICE_COMPAT_REPLICATION_FACTOR || 1)
const MIN_INSYNC = process.env.SLUICE_COMPAT_MIN_INSYNC_REPLICAS
const CONFIG_ENTRIES = MIN_INSYNC ? [{ name: 'min.insync.replicas', value: String(MIN_INSYNC) }] : []

function expected(codec) {
  const out = []
  for (let i = 0; i < N; i++) {
    out.push({
      key: `kafkajs-${codec}-key-${i}`,
      value: `value ${i} `.repeat(1 + (i % 25)),
      headers: { seq: String(i), client: 'kafkajs' },
    })
  }
  return out
}

function createCluster(kafka) {
  // Kafka keeps its cluster factory under a private symbol.
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  if (!sym) throw new Error('kafkajs internals changed: no createCluster symbol')
  return kafka[sym]({ allowAutoTopicCreation: false })
}

async function readAll(cluster, topic, want) {
  await cluster.connect()
  await cluster.addTargetTopic(topic)
  await cluster.refreshMetadata()
  const next = {}
  for (let p = 0; p < PARTITIONS; p++) next[p] = '0'
  const got = []
  const deadline = Date.now() + DEADLINE_MS
  while (got.length < want && Date.now() < deadline) {
    const leaders = cluster.findLeaderForPartitions(topic, Object.keys(next))
    for (const nodeId of Object.keys(leaders)) {
      const broker = await cluster.findBroker({ nodeId })
      const resp = await broker.fetch({
        replicaId: -1,
        isolationLevel: 1,
        maxWaitTime: 200,
        minBytes: 1,
        maxBytes: 10 << 20,
        topics: [{
          topic,
          partitions: leaders[nodeId].map(p => ({ partition: p, fetchOffset: next[p], maxBytes: 4 << 20 })),
        }],
      })
      for (const t of resp.responses) {
        for (const part of t.partitions) {
          if (part.errorCode !== 0) throw new Error(`fetch ${topic}/${part.partition}: error ${part.errorCode}`)
          for (const m of part.messages) {
            // A fetch may start inside a batch: skip what we already have.
            if (BigInt(m.offset) < BigInt(next[part.partition])) continue
            if (BigInt(m.offset) !== BigInt(next[part.partition])) {
              throw new Error(`${topic}/${part.partition}: offset ${m.offset} after ${next[part.partition]}: not dense`)
            }
            got.push(m)
            next[part.partition] = (BigInt(m.offset) + 1n).toString()
          }
        }
      }
    }
  }
  return got
}

function compare(codec, want, got) {
  const errs = []
  if (got.length !== want.length) errs.push(`${codec}: read ${got.length} records, produced ${want.length}`)
  const byKey = new Map(want.map(w => [w.key, w]))
  const seen = new Set()
  for (const m of got) {
    const key = m.key ? m.key.toString() : null
    const w = byKey.get(key)
    if (!w) { errs.push(`${codec}: unexpected key ${key}`); continue }
    if (seen.has(key)) errs.push(`${codec}: key ${key} read twice`)
    seen.add(key)
    if (!m.value || m.value.toString() !== w.value) errs.push(`${codec}: key ${key}: value differs`)
    const h = {}
    for (const [k, v] of Object.entries(m.headers || {})) h[k] = Buffer.isBuffer(v) ? v.toString() : String(v)
    if (JSON.stringify(h) !== JSON.stringify(w.headers)) errs.push(`${codec}: key ${key}: headers ${JSON.stringify(h)}`)
  }
  return errs
}

async function main() {
  const kafka = new Kafka({ clientId: 'sluice-compat-kafkajs', brokers: bootstrap.split(','), logLevel: logLevel.ERROR, retry: { retries: 5 } })
  const admin = kafka.admin()
  await admin.connect()
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const codecs = { gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy }
  const errs = []
  try {
    for (const [codec, type] of Object.entries(codecs)) {
      const topic = `compat-kafkajs-${codec}`
      const created = await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: REPLICATION_FACTOR, configEntries: CONFIG_ENTRIES }], waitForLeaders: true })
      if (!created) throw new Error(`createTopics ${topic}: not created`)
      const want = expected(codec)
      for (let i = 0; i < want.length; i += 50) {
        await producer.send({ topic, acks: -1, compression: type, messages: want.slice(i, i + 50) })
      }
      const cluster = createCluster(kafka)
      try {
        const got = await readAll(cluster, topic, want.length)
        errs.push(...compare(codec, want, got))
      } finally {
        await cluster.disconnect()
      }
      const offsets = await admin.fetchTopicOffsets(topic)
      const total = offsets.reduce((s, o) => s + Number(o.high) - Number(o.low), 0)
      if (total !== N) errs.push(`${codec}: fetchTopicOffsets counts ${total} records, want ${N}`)
    }
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
  if (errs.length) {
    for (const e of errs.slice(0, 20)) console.error(e)
    process.exit(1)
  }
  console.log(`kafkajs: ${Object.keys(codecs).length} codecs x ${N} records round-tripped`)
}

main().catch(err => {
  console.error('kafkajs check failed:', err && err.stack ? err.stack : err)
  process.exit(1)
})
