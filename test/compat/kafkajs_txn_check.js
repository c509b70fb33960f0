// kafkajs transactions against a running Sluice broker: a transactional
// producer commits the even transactions and aborts the odd ones over
// three partitions; a read_committed group consumer must then read exactly
// the committed records.
//
// Usage: node kafkajs_txn_check.js HOST:PORT[,HOST:PORT...]
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const bootstrap = process.argv[2]
if (!bootstrap) {
  console.error('usage: node kafkajs_txn_check.js HOST:PORT')
  process.exit(2)
}

const TOPIC = 'compat-kafkajs-txn'
const PARTITIONS = 3
const TXNS = 10
const PER_TXN = 15
const DEADLINE_MS = 60000

const REPLICATION_FACTOR = Number(process.env.SLUICE_COMPAT_REPLICATION_FACTOR || 1)
const MIN_INSYNC = process.env.SLUICE_COMPAT_MIN_INSYNC_REPLICAS
const CONFIG_ENTRIES = MIN_INSYNC ? [{ name: 'min.insync.replicas', value: String(MIN_INSYNC) }] : []

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function produce(kafka) {
  const producer = kafka.producer({ transactionalId: 'compat-kafkajs-txn', idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const committed = new Set()
  try {
    for (let t = 0; t < TXNS; t++) {
      const commit = t % 2 === 0
      const txn = await producer.transaction()
      const messages = []
      for (let i = 0; i < PER_TXN; i++) {
        const value = `${commit ? 'commit' : 'abort'}-${t}-${i}`
        messages.push({ value, partition: i % PARTITIONS })
        if (commit) committed.add(value)
      }
      await txn.send({ topic: TOPIC, messages })
      if (commit) await txn.commit()
      else await txn.abort()
    }
  } finally {
    await producer.disconnect()
  }
  return committed
}

async function consume(kafka, want) {
  const consumer = kafka.consumer({ groupId: 'compat-kafkajs-txn-g', readUncommitted: false, maxWaitTimeInMs: 200 })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true })
    await consumer.run({ eachMessage: async ({ message }) => { got.push(message.value.toString()) } })
    const deadline = Date.now() + DEADLINE_MS
    while (got.length < want && Date.now() < deadline) await sleep(100)
    await sleep(1000) // to catch records that should not be there
  } finally {
    await consumer.disconnect()
  }
  return got
}

async function main() {
  const kafka = new Kafka({ clientId: 'sluice-compat-kafkajs-txn', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: REPLICATION_FACTOR, configEntries: CONFIG_ENTRIES }] })
  await admin.disconnect()
  const committed = await produce(kafka)
  const got = await consume(kafka, committed.size)
  const errs = []
  const aborted = got.filter(v => !v.startsWith('commit-'))
  if (aborted.length) errs.push(`read_committed returned ${aborted.length} aborted records, e.g. ${aborted[0]}`)
  const seen = new Set(got)
  if (seen.size !== got.length) errs.push('read_committed returned a record twice')
  for (const v of committed) if (!seen.has(v)) { errs.push(`committed ${v} not read`); break }
  if (errs.length) {
    errs.forEach(e => console.error(e))
    process.exit(1)
  }
  console.log(`kafkajs: ${TXNS} transactions (half aborted) x ${PER_TXN} records, read_committed saw exactly the ${committed.size} committed`)
}

main().catch(e => { console.error(e); process.exit(1) })
