// Repaying from the customer's own account: what is due first, then principal early; the payoff
// amount closes the loan. The customer types yuan; the API takes fen.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {loanId: 0, payoff: null, amount: '', repaid: null, error: '', busy: false},
  methods: {
    onLoad(query) {
      this.setData({loanId: Number(query.loan)})
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const payoff = await api.payoffQuote(this.data.loanId)
        this.setData({
          busy: false,
          payoff: {...payoff, dueText: api.money.fenText(payoff.due.total_fen), totalText: api.money.fenText(payoff.total_fen)},
        })
      } catch (error) {
        showError(this, error)
      }
    },

    onAmount(event) {
      this.setData({amount: event.detail.value})
    },

    onPayAll() {
      this.setData({amount: api.money.fenText(this.data.payoff.total_fen).replace(/,/g, '')})
    },

    async onRepay() {
      const fen = api.money.fenFromYuanInput(this.data.amount)
      if (!fen) {
        this.setData({error: '请输入还款金额（元，最多两位小数）'})
        return
      }
      clearError(this)
      try {
        const repaid = await api.repay(this.data.loanId, fen, {key: api.actionKey(this, 'repay', fen)})
        api.actionDone(this, 'repay')
        this.setData({busy: false, repaid: {...repaid, amountText: api.money.fenText(repaid.amount_fen)}})
      } catch (error) {
        showError(this, error)
      }
    },
  },
})
