// bullmq_driver.js - the BullMQ side of bench/compare (see jobq_driver.c for
// the plan and job-log formats every driver shares).
//   node bullmq_driver.js enqueue REDIS_URL < plan
//   node bullmq_driver.js worker REDIS_URL CONCURRENCY [JOB_LOG] [--otel OTLP_URL]
// Jobs are added with addBulk (chunks of 1000) and removeOnComplete, the way
// BullMQ users keep Redis bounded. --otel records, in process with the
// OpenTelemetry JS SDK, what jobq-agent records from the kernel: a
// job.process span per job and the jobs.processed / jobs.duration /
// jobs.wait_time metrics by tenant, exported as OTLP/HTTP protobuf.
'use strict';
const fs = require('fs');
const readline = require('readline');
const { Queue, Worker } = require('bullmq');

const QUEUE = 'bench';
const CHUNK = 1000;

function conn(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
}

const nowNs = () => process.hrtime.bigint() - hr0 + wall0;
const hr0 = process.hrtime.bigint();
const wall0 = BigInt(Date.now()) * 1000000n;

async function enqueue(url) {
  const q = new Queue(QUEUE, { connection: conn(url) });
  const t0 = Date.now();
  let batch = [], cur = null, total = 0, first = 0;
  const flush = async () => {
    for (let i = 0; i < batch.length; i += CHUNK) await q.addBulk(batch.slice(i, i + CHUNK));
    total += batch.length;
    batch = [];
  };
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const [off, tenant, ms] = line.split(' ');
    if (ms === undefined) throw new Error(`plan line "${line}": expected "offset_ms tenant work_ms"`);
    if (off !== cur) {
      await flush();
      const wait = t0 + Number(off) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      cur = off;
      if (!first) first = process.hrtime.bigint();
    }
    batch.push({
      name: Number(ms) ? 'sleep' : 'noop',
      data: { t: tenant, e: nowNs().toString(), ms: Number(ms) },
      opts: { removeOnComplete: true, removeOnFail: 1000 },
    });
  }
  await flush();
  console.log(`enqueued=${total} wall_ns=${first ? process.hrtime.bigint() - first : 0}`);
  await q.close();
}

function otelSetup(endpoint) {
  const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
  const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
  const { OTLPMetricExporter } = require('@opentelemetry/exporter-metrics-otlp-proto');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const resource = resourceFromAttributes({ 'service.name': 'bench-bullmq-worker' });
  const tp = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))],
  });
  const mp = new MeterProvider({
    resource,
    readers: [new PeriodicExportingMetricReader({
      exporter: new OTLPMetricExporter({ url: `${endpoint}/v1/metrics` }),
      exportIntervalMillis: 1000,
    })],
  });
  const meter = mp.getMeter('jobq-bench');
  return {
    tracer: tp.getTracer('jobq-bench'),
    processed: meter.createCounter('jobs.processed'),
    duration: meter.createHistogram('jobs.duration', { unit: 'ms' }),
    wait: meter.createHistogram('jobs.wait_time', { unit: 'ms' }),
    shutdown: () => Promise.all([tp.shutdown(), mp.shutdown()]),
  };
}

async function worker(url, concurrency, jobLog, otelUrl) {
  const fd = jobLog ? fs.openSync(jobLog, 'a') : -1;
  const otel = otelUrl ? otelSetup(otelUrl) : null;
  const w = new Worker(QUEUE, async (job) => {
    const start = nowNs();
    const span = otel && otel.tracer.startSpan('job.process', {
      kind: 5, /* CONSUMER */
      attributes: { 'tenant.id': job.data.t, 'job.type': job.name, 'messaging.system': 'bullmq' },
    });
    if (job.data.ms) await new Promise((r) => setTimeout(r, job.data.ms));
    const end = nowNs();
    if (otel) {
      const a = { 'tenant.id': job.data.t, 'job.type': job.name, 'job.status': 'ok' };
      otel.processed.add(1, a);
      otel.duration.record(Number(end - start) / 1e6, a);
      otel.wait.record(Number(start - BigInt(job.data.e)) / 1e6, a);
      span.end();
    }
    if (fd >= 0) fs.writeSync(fd, `${job.data.t} ${job.data.e} ${start} ${end}\n`);
  }, { connection: conn(url), concurrency });
  await w.waitUntilReady();
  process.stderr.write('bullmq_driver: worker ready\n');
  const stop = async () => {
    await w.close();
    if (otel) await otel.shutdown();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

const [mode, url, ...rest] = process.argv.slice(2);
const main = mode === 'enqueue' ? enqueue(url)
  : mode === 'worker' ? worker(url, Number(rest[0]), rest[1] && rest[1] !== '-' ? rest[1] : null,
      rest[2] === '--otel' ? rest[3] : null)
  : Promise.reject(new Error('usage: bullmq_driver.js enqueue|worker REDIS_URL ...'));
main.catch((e) => { console.error(`bullmq_driver: ${e.message}`); process.exit(1); });
