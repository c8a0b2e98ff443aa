// The loans the customer borrows, co-borrows or guarantees (amounts in fen).
const api = require('../../utils/api.js')
const {showError, clearError, statusText} = require('../../utils/page.js')

const CAPACITY_TEXT = {borrower: '借款人', co_borrower: '共同借款人', guarantor: '担保人'}

Component({
  data: {items: [], error: '', busy: false},
  methods: {
    onLoad() {
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const found = await api.loans()
        const items = found.items.map((loan) => ({
          ...loan,
          statusText: statusText(loan.status),
          capacityText: CAPACITY_TEXT[loan.capacity] || loan.capacity,
          principalText: api.money.fenText(loan.principal_fen),
          owedText: api.money.fenText(loan.owed.principal_fen),
        }))
        this.setData({items, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },

    open(event) {
      wx.navigateTo({url: `/pages/loan/loan?id=${event.currentTarget.dataset.id}`})
    },
  },
})
