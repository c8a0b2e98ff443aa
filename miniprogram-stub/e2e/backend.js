// A real backend for the end-to-end test, on embedded defaults: a temporary SQLite database,
// migrated and loaded with the demo data, the fake WeChat server and the API (e2e/serve.py, which
// is `server.cli serve` plus a readable SMS inbox), each on a free port. `stop()` ends them.
const {spawn, execFile} = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')

// The repository whose backend is started (E2E_REPO: another checkout of it, e.g. to bisect).
const REPO = process.env.E2E_REPO ? path.resolve(process.env.E2E_REPO) : path.resolve(__dirname, '..', '..')

function python() {
  if (process.env.PYTHON) return process.env.PYTHON
  const venv = path.join(REPO, '.venv', 'bin', 'python')
  return fs.existsSync(venv) ? venv : 'python3'
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address()
      server.close(() => resolve(port))
    })
  })
}

function run(args, env, log) {
  return new Promise((resolve, reject) => {
    execFile(python(), args, {cwd: REPO, env, timeout: 180000, maxBuffer: 16 * 1024 * 1024}, (error, stdout, stderr) => {
      fs.appendFileSync(log, `$ python ${args.join(' ')}\n${stdout}${stderr}\n`)
      if (error) reject(new Error(`python ${args.join(' ')} failed (log: ${log}):\n${stderr.slice(-3000)}`))
      else resolve(stdout)
    })
  })
}

async function waitForHttp(url, child, log, seconds = 60) {
  const deadline = Date.now() + seconds * 1000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the process for ${url} exited with ${child.exitCode}:\n${tail(log)}`)
    try {
      const res = await fetch(url)
      if (res.status < 500) return
    } catch (e) {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`nothing answered ${url} within ${seconds} s:\n${tail(log)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

function tail(log) {
  try {
    return fs.readFileSync(log, 'utf8').slice(-4000)
  } catch (e) {
    return ''
  }
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null) return resolve()
    const killer = setTimeout(() => child.kill('SIGKILL'), 15000)
    child.once('exit', () => {
      clearTimeout(killer)
      resolve()
    })
    child.kill('SIGINT')
  })
}

async function startBackend() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-e2e-'))
  const log = path.join(dir, 'backend.log')
  const [apiPort, wechatPort] = [await freePort(), await freePort()]
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !['DATABASE_URL', 'REDIS_URL', 'PROVIDERS'].includes(k))),
    APP_ENV: 'dev',
    DATABASE_URL: `sqlite://${dir}/app.sqlite3`,
    NOTARY_DIR: path.join(dir, 'notary'),
    WECHAT_API_BASE: `http://127.0.0.1:${wechatPort}/`,
    HOST: '127.0.0.1',
    PORT: String(apiPort),
    SMS_INBOX_FILE: path.join(dir, 'sms.jsonl'),
    LOG_LEVEL: 'WARNING',
  }
  const children = []
  const backend = {
    dir,
    log,
    baseUrl: `http://127.0.0.1:${apiPort}`,
    wechatUrl: `http://127.0.0.1:${wechatPort}`,
    smsInbox: env.SMS_INBOX_FILE,
    async stop() {
      await Promise.all(children.map(stopChild))
      if (!process.env.KEEP_E2E_DIR) fs.rmSync(dir, {recursive: true, force: true})
    },
  }
  try {
    await run(['-m', 'server.cli', 'migrate'], env, log)
    await run(['-m', 'server.cli', 'demo'], env, log)
    const out = fs.openSync(log, 'a')
    const wechat = spawn(python(), ['-m', 'fakes.wechat', '--port', String(wechatPort)], {cwd: REPO, env, stdio: ['ignore', out, out]})
    children.push(wechat)
    const api = spawn(python(), [path.join(__dirname, 'serve.py')], {cwd: REPO, env: {...env, PYTHONPATH: REPO}, stdio: ['ignore', out, out]})
    children.push(api)
    await waitForHttp(`${backend.wechatUrl}/`, wechat, log)
    await waitForHttp(`${backend.baseUrl}/healthz`, api, log)
  } catch (error) {
    await backend.stop()
    throw error
  }
  return backend
}

// The last text the SMS sandbox sent to `phone` (the customer reading their phone).
function lastSms(backend, phone) {
  if (!fs.existsSync(backend.smsInbox)) return null
  const texts = fs
    .readFileSync(backend.smsInbox, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((m) => m.phone === phone)
  return texts.length ? texts[texts.length - 1].text : null
}

module.exports = {startBackend, lastSms, REPO}
