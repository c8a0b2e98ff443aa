// A fake of the lending API at the wx.request boundary: routes answer with a status and a body,
// every request is recorded (method, path, query, body, headers) for the tests to check.

function createFakeApi() {
  const routes = []
  const calls = []
  const networkFailures = []

  function on(method, pattern, answer) {
    const regex = new RegExp(`^${pattern.replace(/:[a-z_]+/g, '([^/]+)')}$`)
    routes.unshift({method, regex, answer})
    return api
  }

  function failNetworkOnce(method, path) {
    networkFailures.push({method, path})
  }

  function handle(options) {
    const parsed = new URL(options.url)
    const request = {
      method: options.method || 'GET',
      path: parsed.pathname,
      query: Object.fromEntries(parsed.searchParams.entries()),
      body: options.data,
      headers: options.header || {},
    }
    calls.push(request)
    setTimeout(() => {
      const failure = networkFailures.findIndex((f) => f.method === request.method && f.path === request.path)
      if (failure >= 0) {
        networkFailures.splice(failure, 1)
        if (options.fail) options.fail({errMsg: 'request:fail timeout'})
        return
      }
      const route = routes.find((r) => r.method === request.method && r.regex.test(request.path))
      let status = 404
      let body = {error: {code: 'ROUTE_NOT_FOUND', message: 'no such route', details: null}}
      let header = {}
      if (route) {
        const params = request.path.match(route.regex).slice(1)
        const answer = typeof route.answer === 'function' ? route.answer(request, ...params) : route.answer
        ;[status, body, header = {}] = answer
      }
      if (options.success) options.success({statusCode: status, data: body, header})
    }, 0)
    return {abort() {}}
  }

  function callsTo(method, path) {
    return calls.filter((c) => c.method === method && c.path === path)
  }

  function reset() {
    routes.length = 0
    calls.length = 0
    networkFailures.length = 0
  }

  const api = {on, handle, calls, callsTo, failNetworkOnce, reset}
  return api
}

function refusal(status, code, details = null) {
  return [status, {error: {code, message: 'refused', details}}]
}

module.exports = {createFakeApi, refusal}
