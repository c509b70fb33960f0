// kafkajs against a secured Sluice broker: a topic created with the admin
// client, keyed records produced and read back in a consumer group over
// SASL_SSL with SCRAM-SHA-512, then over SSL with a client certificate.
//
// Usage: node kafkajs_secure_check.js SASL_SSL_HOST:PORT
// Env: as kcat_secure_check.sh.
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const N = 100;
const env = process.env;
const ca = [fs.readFileSync(env.SLUICE_COMPAT_CA)];
const modes = {
  sasl: {
    brokers: [process.argv[2]], ssl: { ca },
    sasl: { mechanism: 'scram-sha-512', username: env.SLUICE_COMPAT_USER, password: env.SLUICE_COMPAT_PASSWORD },
  },
  mtls: {
    brokers: [env.SLUICE_COMPAT_MTLS_BOOTSTRAP],
    ssl: { ca, cert: fs.readFileSync(env.SLUICE_COMPAT_CERT), key: fs.readFileSync(env.SLUICE_COMPAT_KEY) },
  },
};

async function roundTrip(mode, cfg) {
  const topic = `compat-secure-kafkajs-${mode}`;
  const kafka = new Kafka({ clientId: 'compat-kafkajs', logLevel: logLevel.ERROR, ...cfg });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const want = Array.from({ length: N }, (_, i) => ({ key: `kj-${mode}-${i}`, value: `value ${i}` }));
  await producer.send({ topic, acks: -1, messages: want });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: topic });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got = new Map();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode}: got ${got.size} of ${N} records in 60 s`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        got.set(message.key.toString(), message.value.toString());
        if (got.size === N) { clearTimeout(timer); resolve(); }
      },
    });
  });
  await consumer.disconnect();
  for (const r of want) {
    if (got.get(r.key) !== r.value) throw new Error(`${mode}: record ${r.key} is ${got.get(r.key)}`);
  }
}

(async () => {
  for (const [mode, cfg] of Object.entries(modes)) await roundTrip(mode, cfg);
  console.log(`kafkajs: SASL_SSL SCRAM-SHA-512 and mTLS x ${N} records round-tripped`);
})().catch((e) => { console.error(`kafkajs: ${e.stack || e}`); process.exit(1); });
