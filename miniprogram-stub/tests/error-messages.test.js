// Every code the server can answer with has words for the customer: the table follows
// api/errors.py (and the campaign routes' codes once they exist).
const fs = require('fs')
const path = require('path')
const {BY_CODE, messageFor} = require('../utils/error-messages.js')

const API_DIR = path.resolve(__dirname, '..', '..', 'api')

function serverCodes() {
  const source = fs.readFileSync(path.join(API_DIR, 'errors.py'), 'utf8')
  const codes = new Set()
  for (const match of source.matchAll(/\(\s*\d{3}\s*,\s*"([A-Z][A-Z0-9_]+)"\s*\)/g)) codes.add(match[1])
  return [...codes]
}

test('the server error table is found and read', () => {
  const codes = serverCodes()
  expect(codes.length).toBeGreaterThan(50)
  expect(codes).toEqual(expect.arrayContaining(['TOKEN_EXPIRED', 'REAL_NAME_REQUIRED', 'SIGNING_CODE_WRONG', 'INSUFFICIENT_FUNDS']))
})

test('every server error code has a Chinese message', () => {
  const missing = serverCodes().filter((code) => !BY_CODE[code])
  expect(missing).toEqual([])
})

test('every message is in Chinese', () => {
  for (const code of Object.keys(BY_CODE)) {
    const message = messageFor(code, 400, {attempts_left: 1})
    expect([code, /[\u4e00-\u9fa5]/.test(message)]).toEqual([code, true])
  }
})
