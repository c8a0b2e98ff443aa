// One loan with its schedule (amounts in fen).
const api = require('../../utils/api.js')
const {showError, clearError, statusText} = require('../../utils/page.js')

Component({
  data: {id: 0, loan: null, error: '', busy: false},
  methods: {
    onLoad(query) {
      this.setData({id: Number(query.id)})
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const loan = await api.loan(this.data.id)
        this.setData({
          busy: false,
          loan: {
            ...loan,
            statusText: statusText(loan.status),
            principalText: api.money.fenText(loan.principal_fen),
            rateText: api.money.rateText(loan.annual_rate_bps),
            rows: loan.schedule.map((r) => ({
              ...r,
              statusText: statusText(r.status),
              principalText: api.money.fenText(r.principal_fen),
              interestText: api.money.fenText(r.interest_fen),
              totalText: api.money.fenText(r.total_fen),
            })),
          },
        })
      } catch (error) {
        showError(this, error)
      }
    },

    goRepay() {
      wx.navigateTo({url: `/pages/repay/repay?loan=${this.data.id}`})
    },
  },
})
