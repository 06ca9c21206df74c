#!/usr/bin/env node
// OTLP/HTTP test peer for jobq-sidecar. Decodes every request with the
// OFFICIAL opentelemetry-proto schema (protobufjs code generated from
// opentelemetry-proto v1.7.0, shipped by @opentelemetry/otlp-transformer,
// pinned in package.json) -- independent of the sidecar's own .proto files.
//
// usage: peer.js --port-file F --out F [--script F] [--port N]
//                [--tls-cert F --tls-key F]   (HTTPS instead of HTTP)
//   --out:    one JSON line per request: {path, contentType, contentEncoding,
//             receivedMs, status, body} where body is the decoded request
//             (64-bit integers as decimal strings, enums as numbers, ids as
//             hex) or {decodeError}; JSON requests also get jsonViolations,
//             the OTLP/JSON rules the raw body breaks (otlp_json_check.js:
//             fromObject below would silently accept most of them)
//   --script: canned answers used in order, then 200 OK: a JSON array for
//             every path, or {"/v1/metrics": [...], "/v1/traces": [...]};
//             {status, retryAfter, statusMessage, partial: {rejected, message},
//              delayMs, close: true, json: true}
'use strict';
const http = require('http');
const https = require('https');
const fs = require('fs');
const zlib = require('zlib');
const { isUtf8 } = require('buffer');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const { check: checkOtlpJson } = require('./otlp_json_check.js');

const P = root.opentelemetry.proto;
const types = {
  '/v1/metrics': [P.collector.metrics.v1.ExportMetricsServiceRequest,
                  P.collector.metrics.v1.ExportMetricsServiceResponse, 'rejectedDataPoints'],
  '/v1/traces': [P.collector.trace.v1.ExportTraceServiceRequest,
                 P.collector.trace.v1.ExportTraceServiceResponse, 'rejectedSpans'],
};

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const script = args.script ? JSON.parse(fs.readFileSync(args.script, 'utf8')) : [];
const out = fs.openSync(args.out, 'a');

// Ids as hex, like OTLP JSON; everything else as toObject gives it.
function hexIds(o) {
  if (Array.isArray(o)) return o.map(hexIds);
  if (o && typeof o === 'object') {
    const r = {};
    for (const [k, v] of Object.entries(o)) {
      if ((k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof v === 'string')
        r[k] = Buffer.from(v, 'base64').toString('hex');
      else r[k] = hexIds(v);
    }
    return r;
  }
  return o;
}

// OTLP JSON -> protobufjs message: hex ids back to bytes. fromObject (not
// verify, which refuses the decimal-string int64s that proto3 JSON
// mandates) parses 64-bit strings; a misnamed key would simply be missing,
// which the tests' exact value checks catch.
function fromOtlpJson(Type, text) {
  const obj = JSON.parse(text, (k, v) =>
    (k === 'traceId' || k === 'spanId' || k === 'parentSpanId') && typeof v === 'string'
      ? Buffer.from(v, 'hex') : v);
  return Type.fromObject(obj);
}

const toObj = { longs: String, enums: Number, bytes: String, defaults: false, arrays: true, oneofs: false };

const handler = (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const t = types[req.url];
    let raw = Buffer.concat(chunks);
    const rec = {
      path: req.url, contentType: req.headers['content-type'] || '',
      contentEncoding: req.headers['content-encoding'] || '', receivedMs: Date.now(),
      headers: req.headers,
    };
    try {
      if (!t) throw new Error('unknown path');
      if (rec.contentEncoding === 'gzip') raw = zlib.gunzipSync(raw);
      let msg;
      if (rec.contentType === 'application/json') {
        rec.validUtf8 = isUtf8(raw);
        rec.jsonViolations = checkOtlpJson(JSON.parse(raw.toString('utf8')),
          req.url === '/v1/metrics' ? 'metrics' : 'traces');
        msg = fromOtlpJson(t[0], raw.toString('utf8'));
      } else {
        msg = t[0].decode(raw);
      }
      rec.body = hexIds(t[0].toObject(msg, toObj));
    } catch (e) {
      rec.body = { decodeError: String(e) };
    }
    const list = Array.isArray(script) ? script : (script[req.url] || []);
    const a = list.length ? list.shift() : {};
    rec.status = a.status || 200;
    fs.writeSync(out, JSON.stringify(rec) + '\n');
    const answer = () => {
      if (a.close) { req.socket.destroy(); return; }
      const headers = {};
      if (a.retryAfter !== undefined) headers['Retry-After'] = String(a.retryAfter);
      let body = Buffer.alloc(0);
      if (rec.status >= 400 && a.statusMessage !== undefined) {
        // google.rpc.Status {code=1, message=2}, hand-encoded (not in root.js).
        const m = Buffer.from(a.statusMessage, 'utf8');
        body = Buffer.concat([Buffer.from([0x08, 3, 0x12]), varint(m.length), m]);
        headers['Content-Type'] = 'application/x-protobuf';
      } else if (t && a.partial) {
        const resp = t[1].fromObject({ partialSuccess: { [t[2]]: a.partial.rejected, errorMessage: a.partial.message } });
        if (a.json) {
          body = Buffer.from(JSON.stringify(t[1].toObject(resp, { longs: String })));
          headers['Content-Type'] = 'application/json';
        } else {
          body = Buffer.from(t[1].encode(resp).finish());
          headers['Content-Type'] = 'application/x-protobuf';
        }
      } else if (t) {
        body = Buffer.from(t[1].encode(t[1].create({})).finish());
        headers['Content-Type'] = 'application/x-protobuf';
      }
      headers['Content-Length'] = body.length;
      res.writeHead(rec.status, headers);
      res.end(body);
    };
    if (a.delayMs) setTimeout(answer, a.delayMs); else answer();
  });
};
const server = args['tls-cert']
  ? https.createServer({ cert: fs.readFileSync(args['tls-cert']), key: fs.readFileSync(args['tls-key']) }, handler)
  : http.createServer(handler);

function varint(n) {
  const b = [];
  while (n > 127) { b.push((n & 127) | 128); n >>>= 7; }
  b.push(n);
  return Buffer.from(b);
}

server.listen(Number(args.port || 0), '127.0.0.1', () => {
  fs.writeFileSync(args['port-file'] + '.tmp', String(server.address().port));
  fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
});
process.on('SIGTERM', () => process.exit(0));
