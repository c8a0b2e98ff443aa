// The landing page (the page an invite's mini-program code opens): WeChat login, the choice of
// bank when no invite named one, and binding the phone WeChat vouches for.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {
    scene: '',
    loggedIn: false,
    customer: null,
    banks: [],
    needBank: false,
    phoneBound: false,
    error: '',
    notice: '',
    busy: false,
  },
  methods: {
    onLoad(query) {
      const scene = api.rememberScene(query && query.scene) || api.scene() || ''
      const current = api.session()
      this.setData({scene, loggedIn: current.loggedIn, customer: current.customer, needBank: current.loggedIn && !current.bankId})
      if (query && query.scene) {
        // Counting the scan must never stop the customer from going on.
        api.recordScan(scene, 'wxacode').catch(() => {})
      }
    },

    async onLogin() {
      clearError(this)
      try {
        const answer = await api.login()
        this.setData({loggedIn: true, customer: answer.customer, busy: false, needBank: !answer.bank_id, phoneBound: Boolean(answer.customer && answer.customer.phone)})
        if (!answer.bank_id) await this.loadBanks()
      } catch (error) {
        showError(this, error)
      }
    },

    async loadBanks() {
      try {
        const found = await api.banks()
        this.setData({banks: found.items})
      } catch (error) {
        showError(this, error)
      }
    },

    async onChooseBank(event) {
      clearError(this)
      try {
        const answer = await api.chooseBank(Number(event.currentTarget.dataset.id))
        this.setData({needBank: false, customer: answer.customer, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },

    async onGetPhoneNumber(event) {
      const code = event.detail && event.detail.code
      if (!code) {
        this.setData({error: '需要您授权手机号才能继续办理'})
        return
      }
      clearError(this)
      try {
        const customer = await api.bindPhone(code)
        this.setData({customer, phoneBound: true, busy: false, notice: `已绑定手机号 ${customer.phone}`})
      } catch (error) {
        showError(this, error)
      }
    },

    go(event) {
      wx.navigateTo({url: event.currentTarget.dataset.url})
    },
  },
})
