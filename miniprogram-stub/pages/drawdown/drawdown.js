// Drawing on an effective credit line: the customer types yuan, the API takes fen; the preview
// shows the schedule and APR before the money moves.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {contractId: 0, amount: '', preview: null, error: '', busy: false},
  methods: {
    onLoad(query) {
      this.setData({contractId: Number(query.contract)})
    },

    onAmount(event) {
      this.setData({amount: event.detail.value, preview: null})
    },

    amountFen() {
      const fen = api.money.fenFromYuanInput(this.data.amount)
      if (!fen) this.setData({error: '请输入提款金额（元，最多两位小数）'})
      return fen
    },

    async onPreview() {
      const fen = this.amountFen()
      if (!fen) return
      clearError(this)
      try {
        const preview = await api.previewDrawdown(this.data.contractId, fen)
        this.setData({
          busy: false,
          preview: {
            ...preview,
            principalText: api.money.fenText(preview.principal_fen),
            interestText: api.money.fenText(preview.total_interest_fen),
            aprText: api.money.rateText(preview.apr_bps),
            rows: preview.schedule.map((r) => ({...r, totalText: api.money.fenText(r.total_fen)})),
          },
        })
      } catch (error) {
        showError(this, error)
      }
    },

    async onConfirm() {
      const fen = this.amountFen()
      if (!fen) return
      clearError(this)
      try {
        const loan = await api.drawdown(this.data.contractId, fen, {key: api.actionKey(this, 'drawdown', fen)})
        api.actionDone(this, 'drawdown')
        this.setData({busy: false})
        wx.redirectTo({url: `/pages/loan/loan?id=${loan.id}`})
      } catch (error) {
        showError(this, error)
      }
    },
  },
})
