#!/usr/bin/env node
// Raw OTLP/JSON rule checker, independent of protobufjs' lenient
// fromObject (which accepts int64 as numbers, enums as names and any key
// spelling it does not know by ignoring it). The schema comes from the
// OFFICIAL generated code pinned in package.json: the JSDoc of
// @opentelemetry/otlp-transformer's build/src/generated/root.js describes
// every message (`@interface`), field (`@property {type} [name]`) and enum.
//
// Rules checked (OTLP spec, "JSON Protobuf Encoding", and proto3 JSON):
//   - keys are the lowerCamelCase field names of their message (no
//     snake_case, no unknown keys);
//   - 64-bit integers (int64, uint64, fixed64, sint64, sfixed64) are
//     decimal strings, also inside arrays;
//   - enums are integers, not names;
//   - traceId, spanId, parentSpanId are lowercase hex of 32 / 16 digits (or
//     empty), not base64;
//   - 32-bit integers and doubles are numbers (doubles may be "NaN",
//     "Infinity", "-Infinity"), strings are strings, bools are bools.
//
// As a module: check(obj, 'metrics' | 'traces') -> array of violations.
// As a CLI:    otlp_json_check.js FILE...  checks OTLP JSON lines (the file
// exporter format: one ExportMetricsServiceRequest or
// ExportTraceServiceRequest per line), prints one violation per line and
// exits 1 if there is any.
'use strict';
const fs = require('fs');
const path = require('path');

const ROOT_JS = require.resolve('@opentelemetry/otlp-transformer/build/src/generated/root.js',
  { paths: [__dirname] });

function loadSchema() {
  const text = fs.readFileSync(ROOT_JS, 'utf8');
  const messages = {}; // 'ns.IName' -> {field: typeString}
  const enums = new Set(); // 'ns.Enum'
  for (const m of text.matchAll(/\/\*\*([\s\S]*?)\*\//g)) {
    const doc = m[1];
    const iface = /@interface\s+(\S+)/.exec(doc);
    const member = /@memberof\s+(\S+)/.exec(doc);
    if (iface && member) {
      const fields = {};
      for (const p of doc.matchAll(/@property\s+\{([^}]*)\}\s+\[(\w+)\]/g))
        fields[p[2]] = p[1].replace(/\|null$/, '');
      messages[member[1] + '.' + iface[1]] = fields;
      continue;
    }
    const en = /@name\s+(\S+)/.exec(doc);
    if (en && /@enum\b/.test(doc)) enums.add(en[1]);
  }
  if (!messages['opentelemetry.proto.trace.v1.ISpan'] || !enums.has('opentelemetry.proto.trace.v1.Span.SpanKind'))
    throw new Error('otlp_json_check: cannot read the schema from ' + ROOT_JS);
  return { messages, enums };
}

const schema = loadSchema();
const ROOTS = {
  metrics: 'opentelemetry.proto.collector.metrics.v1.IExportMetricsServiceRequest',
  traces: 'opentelemetry.proto.collector.trace.v1.IExportTraceServiceRequest',
};
const ID_LEN = { traceId: 32, spanId: 16, parentSpanId: 16 };
const SPECIAL_DOUBLES = new Set(['NaN', 'Infinity', '-Infinity']);

function checkValue(v, type, field, where, out) {
  const arr = /^Array\.<(.*)>$/.exec(type);
  if (arr) {
    if (!Array.isArray(v)) { out.push(`${where}: repeated field, got ${JSON.stringify(v)}`); return; }
    v.forEach((x, i) => checkValue(x, arr[1], field, `${where}[${i}]`, out));
    return;
  }
  if (v === null) return; // proto3 JSON: null is the default value
  if (type === 'number|Long') {
    if (typeof v !== 'string' || !/^-?\d+$/.test(v))
      out.push(`${where}: 64-bit integer must be a decimal string, got ${JSON.stringify(v)}`);
  } else if (type === 'number') {
    if (typeof v !== 'number' && !SPECIAL_DOUBLES.has(v))
      out.push(`${where}: must be a JSON number, got ${JSON.stringify(v)}`);
  } else if (type === 'string') {
    if (typeof v !== 'string') out.push(`${where}: must be a string, got ${JSON.stringify(v)}`);
  } else if (type === 'boolean') {
    if (typeof v !== 'boolean') out.push(`${where}: must be true or false, got ${JSON.stringify(v)}`);
  } else if (type === 'Uint8Array') {
    if (typeof v !== 'string') {
      out.push(`${where}: bytes must be a string, got ${JSON.stringify(v)}`);
    } else if (ID_LEN[field] !== undefined) {
      if (v !== '' && !(v.length === ID_LEN[field] && /^[0-9a-f]+$/.test(v)))
        out.push(`${where}: ${field} must be ${ID_LEN[field]} lowercase hex digits, got ${JSON.stringify(v)}`);
    } else if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
      out.push(`${where}: bytes must be base64, got ${JSON.stringify(v)}`);
    }
  } else if (schema.enums.has(type)) {
    if (typeof v !== 'number' || !Number.isInteger(v))
      out.push(`${where}: enum ${type.split('.').pop()} must be an integer, got ${JSON.stringify(v)}`);
  } else if (schema.messages[type]) {
    checkMessage(v, type, where, out);
  } else {
    out.push(`${where}: checker does not know the type ${type}`);
  }
}

function checkMessage(obj, type, where, out) {
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    out.push(`${where}: must be an object (${type.split('.').pop().slice(1)}), got ${JSON.stringify(obj)}`);
    return;
  }
  const fields = schema.messages[type];
  for (const [k, v] of Object.entries(obj)) {
    if (!(k in fields)) {
      out.push(`${where}: "${k}" is not a lowerCamelCase field of ${type.split('.').pop().slice(1)}`);
      continue;
    }
    checkValue(v, fields[k], k, where ? `${where}.${k}` : k, out);
  }
}

function check(obj, signal) {
  const out = [];
  checkMessage(obj, ROOTS[signal], '', out);
  return out;
}

module.exports = { check };

if (require.main === module) {
  let bad = 0;
  for (const file of process.argv.slice(2)) {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      let obj;
      try {
        obj = JSON.parse(line);
      } catch (e) {
        console.log(`${path.basename(file)}:${i + 1}: not JSON: ${e.message}`);
        bad++;
        return;
      }
      const signal = 'resourceMetrics' in obj ? 'metrics' : 'resourceSpans' in obj ? 'traces' : null;
      if (!signal) {
        console.log(`${path.basename(file)}:${i + 1}: neither resourceMetrics nor resourceSpans`);
        bad++;
        return;
      }
      for (const v of check(obj, signal)) {
        console.log(`${path.basename(file)}:${i + 1}: ${v}`);
        bad++;
      }
    });
  }
  process.exit(bad ? 1 : 0);
}
