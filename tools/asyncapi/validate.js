#!/usr/bin/env node
// Validates an AsyncAPI document with the reference parser (@asyncapi/parser).
// Usage: node validate.js FILE. Prints one JSON line per diagnostic; exits 1 if any is an
// error (severity 0), 2 on a usage fault, 0 otherwise.
'use strict';

const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main() {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node validate.js FILE');
    return 2;
  }
  const text = fs.readFileSync(file, 'utf8');
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source: file });
  let errors = 0;
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) errors += 1;
    console.log(JSON.stringify({
      severity: ['error', 'warning', 'information', 'hint'][d.severity] || String(d.severity),
      code: d.code,
      message: d.message,
      path: d.path,
    }));
  }
  if (errors > 0 || document === undefined) {
    console.error(`${file}: ${errors} error(s); the document is not valid AsyncAPI`);
    return 1;
  }
  console.error(`${file}: valid AsyncAPI ${document.version()}`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exitCode = 1;
});
