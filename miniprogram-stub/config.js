// Where the lending API lives. `make run` serves it on http://127.0.0.1:8000; point this at the
// bank's HTTPS domain (registered as a request domain in the mini-program console) for real use.
module.exports = {
  apiBaseUrl: 'http://127.0.0.1:8000',
  // Demo only, against the fake WeChat of `make run`: the real wx.login cannot give a code the
  // fake knows, so with a user name here login sends `<user>.<time>` instead (e.g. 'demo-wang').
  // Leave empty for a real mini-program.
  devWechatUser: '',
}
