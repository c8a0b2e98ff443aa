// Just enough of `wx` for the API module to run in Node over real HTTP: request, downloadFile,
// storage in memory, and login handing out codes the fake WeChat understands (`<user>.<n>`).

function install({wechatUser}) {
  const storage = new Map()
  const files = new Map() // tempFilePath -> {bytes, contentType}
  let logins = 0

  async function request({url, method = 'GET', data, header = {}, success, fail}) {
    try {
      const res = await fetch(url, {method, headers: header, body: method === 'GET' || data === undefined ? undefined : JSON.stringify(data)})
      const textBody = await res.text()
      let body = textBody
      if ((res.headers.get('content-type') || '').includes('json') && textBody) body = JSON.parse(textBody)
      success({statusCode: res.status, data: body, header: Object.fromEntries(res.headers.entries())})
    } catch (error) {
      fail({errMsg: `request:fail ${error.message}`})
    }
  }

  async function downloadFile({url, header = {}, success, fail}) {
    try {
      const res = await fetch(url, {headers: header})
      const bytes = Buffer.from(await res.arrayBuffer())
      const tempFilePath = `memory://download/${files.size + 1}`
      files.set(tempFilePath, {bytes, contentType: res.headers.get('content-type')})
      success({statusCode: res.status, tempFilePath})
    } catch (error) {
      fail({errMsg: `downloadFile:fail ${error.message}`})
    }
  }

  global.wx = {
    request,
    downloadFile,
    login: ({success}) => setTimeout(() => success({code: `${wechatUser}.${++logins}`, errMsg: 'login:ok'}), 0),
    getStorageSync: (key) => (storage.has(key) ? storage.get(key) : ''),
    setStorageSync: (key, value) => storage.set(key, value),
    removeStorageSync: (key) => storage.delete(key),
  }
  return {storage, files}
}

module.exports = {install}
