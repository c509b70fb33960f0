// kafkajs consumer groups against a running Sluice broker: produce
// records, read them with kafkajs's normal group consumer (subscribe +
// consumer.run), commit, check the committed offsets with the admin
// client; produce more and check that a second consumer of the same group
// reads exactly the new records.
//
// Usage: node kafkajs_group_check.js HOST:PORT[,HOST:PORT...]
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const bootstrap = process.argv[2]
if (!bootstrap) {
  console.error('usage: node kafkajs_group_check.js HOST:PORT')
  process.exit(2)
}

const TOPIC = 'compat-kafkajs-group'
const GROUP = 'compat-kafkajs-g'
const PARTITIONS = 3
const DEADLINE_MS = 60000

// Replication of the topics this check creates: run.sh's cluster pass sets
// SLUICE_COMPAT_REPLICATION_FACTOR=3 and SLUICE_COMPAT_MIN_INSYNC_REPLICAS=2;
// by default (one broker) 1 and the broker's min.insync.replicas.
const REPLICATION_FACTOR = Number(process.env.SLUICE_COMPAT_REPLICATION_FACTOR || 1)
const MIN_INSYNC = process.env.SLUICE_COMPAT_MIN_INSYNC_REPLICAS
const CONFIG_ENTRIES = MIN_INSYNC ? [{ name: 'min.insync.replicas', value: String(MIN_INSYNC) }] : []

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function produce(kafka, prefix, n) {
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const values = []
  try {
    const messages = []
    for (let i = 0; i < n; i++) {
      values.push(`${prefix}-${i}`)
      messages.push({ key: `k${i}`, value: `${prefix}-${i}` })
    }
    await producer.send({ topic: TOPIC, acks: -1, messages })
  } finally {
    await producer.disconnect()
  }
  return values
}

// consume runs a group consumer until it has want.length records (and a
// moment more, to catch records read twice), commits what it read and
// returns the values.
async function consume(kafka, want) {
  const consumer = kafka.consumer({
    groupId: GROUP,
    sessionTimeout: 10000,
    heartbeatInterval: 1000,
    maxWaitTimeInMs: 200,
    retry: { retries: 5 },
  })
  const got = []
  const next = {} // partition -> next offset to commit
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        got.push(message.value.toString())
        next[partition] = (BigInt(message.offset) + 1n).toString()
      },
    })
    const deadline = Date.now() + DEADLINE_MS
    while (got.length < want.length && Date.now() < deadline) await sleep(100)
    if (got.length < want.length) throw new Error(`read ${got.length} of ${want.length} records within ${DEADLINE_MS} ms`)
    await sleep(1500)
    await consumer.commitOffsets(Object.entries(next).map(([p, offset]) => ({ topic: TOPIC, partition: Number(p), offset })))
  } finally {
    await consumer.disconnect()
  }
  return got
}

async function checkCommitted(admin) {
  const errs = []
  const ends = await admin.fetchTopicOffsets(TOPIC)
  const [committed] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] })
  for (const e of ends) {
    const c = committed.partitions.find(p => p.partition === e.partition)
    if (!c || c.offset !== e.high) errs.push(`partition ${e.partition}: committed ${c && c.offset}, end offset ${e.high}`)
  }
  return errs
}

function compare(run, want, got) {
  const w = [...want].sort()
  const g = [...got].sort()
  if (JSON.stringify(w) === JSON.stringify(g)) return []
  const old = got.filter(v => !want.includes(v))
  const missing = want.filter(v => !got.includes(v))
  return [`run ${run}: read ${got.length} records, want ${want.length}; ${old.length} not expected (e.g. ${old.slice(0, 3)}), ${missing.length} missing`]
}

async function main() {
  const kafka = new Kafka({ clientId: 'sluice-compat-kafkajs', brokers: bootstrap.split(','), logLevel: logLevel.ERROR, retry: { retries: 5 } })
  const admin = kafka.admin()
  await admin.connect()
  const errs = []
  try {
    const created = await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: REPLICATION_FACTOR, configEntries: CONFIG_ENTRIES }], waitForLeaders: true })
    if (!created) throw new Error(`createTopics ${TOPIC}: not created`)
    const first = await produce(kafka, 'first', 90)
    errs.push(...compare(1, first, await consume(kafka, first)))
    errs.push(...(await checkCommitted(admin)).map(e => `run 1: ${e}`))
    const second = await produce(kafka, 'second', 30)
    errs.push(...compare(2, second, await consume(kafka, second)))
    errs.push(...(await checkCommitted(admin)).map(e => `run 2: ${e}`))
  } finally {
    await admin.disconnect()
  }
  if (errs.length) {
    for (const e of errs.slice(0, 20)) console.error(e)
    process.exit(1)
  }
  console.log('kafkajs group: consumer.run consumed and committed 90 records, a second run resumed with exactly 30 new')
}

main().catch(err => {
  console.error('kafkajs group check failed:', err && err.stack ? err.stack : err)
  process.exit(1)
})
