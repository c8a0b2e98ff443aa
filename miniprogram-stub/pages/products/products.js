// The products the customer's bank offers through the mini-program (amounts in whole yuan).
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {items: [], error: '', busy: false},
  methods: {
    onLoad() {
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const found = await api.products()
        const items = found.items.map((p) => ({
          ...p,
          amountText: `${api.money.yuanText(p.amount_yuan.min)} - ${api.money.yuanText(p.amount_yuan.max)} 元`,
          termText: `${p.term_months.min} - ${p.term_months.max} 个月`,
          rateText: `年利率 ${api.money.rateText(p.rate_floor_bps)} 起`,
        }))
        this.setData({items, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },

    open(event) {
      wx.navigateTo({url: `/pages/product/product?code=${event.currentTarget.dataset.code}`})
    },
  },
})
