// Reading and signing a contract: the document is shown (and recorded as viewed), an SMS code
// goes to the party's phone, and the code signs. Contract amounts come in fen.
const api = require('../../utils/api.js')
const {showError, clearError, statusText, METHOD_TEXT} = require('../../utils/page.js')

Component({
  data: {id: 0, contract: null, code: '', codeSentTo: '', resendAfter: 0, agreed: false, error: '', busy: false},
  methods: {
    onLoad(query) {
      this.setData({id: Number(query.id)})
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const contract = await api.contract(this.data.id)
        this.setData({busy: false, contract: this.present(contract)})
      } catch (error) {
        showError(this, error)
      }
    },

    present(contract) {
      return {
        ...contract,
        statusText: statusText(contract.status),
        limitText: api.money.fenText(contract.limit_fen),
        rateText: api.money.rateText(contract.annual_rate_bps),
        methodText: METHOD_TEXT[contract.repayment_method] || contract.repayment_method,
        signed: Boolean(contract.my_signature && contract.my_signature.signed_at),
      }
    },

    onAgree(event) {
      this.setData({agreed: event.detail.value.length > 0})
    },

    onCode(event) {
      this.setData({code: event.detail.value.trim()})
    },

    async onSendCode() {
      clearError(this)
      try {
        const sent = await api.sendSigningCode(this.data.id)
        this.setData({busy: false, codeSentTo: sent.sent_to, resendAfter: sent.resend_after_seconds})
      } catch (error) {
        showError(this, error)
      }
    },

    async onSign() {
      if (!this.data.agreed) {
        this.setData({error: '请先阅读并同意合同条款'})
        return
      }
      if (!/^\d{6}$/.test(this.data.code)) {
        this.setData({error: '请输入 6 位短信验证码'})
        return
      }
      clearError(this)
      try {
        const signed = await api.signWithSmsCode(this.data.id, this.data.code)
        this.setData({busy: false, contract: this.present({...this.data.contract, ...signed}), code: ''})
      } catch (error) {
        showError(this, error)
      }
    },

    goDrawdown() {
      wx.navigateTo({url: `/pages/drawdown/drawdown?contract=${this.data.id}`})
    },
  },
})
