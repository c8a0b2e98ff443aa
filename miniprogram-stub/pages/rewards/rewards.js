// My rewards: red packets and phone credit, with where each payout stands (amounts in fen).
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

const KIND_TEXT = {red_packet: '红包', phone_credit: '话费', referral_reward: '推荐奖励'}
// held waits for its milestone; due has its payout queued; paying is with WeChat Pay or the operator.
const STATUS_TEXT = {held: '待达成', due: '待发放', paying: '发放中', paid: '已发放', failed: '发放失败', returned: '已退回'}

Component({
  data: {items: [], error: '', busy: false},
  methods: {
    onLoad() {
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const found = await api.rewards()
        const items = found.items.map((r) => ({
          ...r,
          kindText: KIND_TEXT[r.kind] || r.kind || '奖励',
          statusText: STATUS_TEXT[r.status] || r.status,
          amountText: api.money.fenText(r.amount_fen),
        }))
        this.setData({items, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },
  },
})
