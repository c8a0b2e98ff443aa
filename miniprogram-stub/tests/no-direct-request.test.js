// Pages reach the network only through utils/api.js: a page calling wx.request would skip the
// token refresh, the Idempotency-Key and the error words.
const fs = require('fs')
const path = require('path')

const ROOT = path.resolve(__dirname, '..')
const DIRECT = /\bwx\s*\.\s*(request|downloadFile|uploadFile|connectSocket)\b|\bwx\s*\[\s*['"](request|downloadFile)['"]\s*\]/

function sources(dir) {
  return fs.readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) return sources(full)
    return /\.(js|wxs|wxml)$/.test(entry.name) ? [full] : []
  })
}

test('the check recognises a direct call', () => {
  expect(DIRECT.test("wx.request({url: 'x'})")).toBe(true)
  expect(DIRECT.test('wx . downloadFile({})')).toBe(true)
  expect(DIRECT.test("wx['request']({})")).toBe(true)
  expect(DIRECT.test('api.products()')).toBe(false)
})

test('no page, nor app.js, nor any helper but utils/api.js calls the network directly', () => {
  const files = [...sources(path.join(ROOT, 'pages')), ...sources(path.join(ROOT, 'utils')), path.join(ROOT, 'app.js')]
  expect(files.length).toBeGreaterThan(14)
  const offenders = files.filter((file) => !file.endsWith(path.join('utils', 'api.js'))).filter((file) => DIRECT.test(fs.readFileSync(file, 'utf8')))
  expect(offenders.map((f) => path.relative(ROOT, f))).toEqual([])
})
