const api = require('./utils/api.js')

App({
  // Opened from an invite's mini-program code or QR: keep the code until login binds it.
  onLaunch(options) {
    const query = (options && options.query) || {}
    api.rememberScene(query.scene)
  },
  globalData: {},
})
