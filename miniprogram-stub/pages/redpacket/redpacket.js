// Red-packet campaigns that are live for the customer, and the grab. A win is shown only once
// the server has committed it; the payout reaches WeChat Pay afterwards.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {campaigns: [], won: null, error: '', busy: false},
  methods: {
    onLoad() {
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const found = await api.campaigns()
        const campaigns = found.items
          .filter((c) => c.kind === 'red_packet')
          .map((c) => ({...c, leftText: c.packets_left === null ? '' : `剩余 ${c.packets_left} 个`}))
        this.setData({campaigns, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },

    async onGrab(event) {
      const campaignId = Number(event.currentTarget.dataset.id)
      clearError(this)
      try {
        const won = await api.grabRedPacket(campaignId)
        this.setData({busy: false, won: {...won, amountText: api.money.fenText(won.amount_fen)}})
      } catch (error) {
        showError(this, error)
        if (error.code === 'NETWORK_ERROR') this.setData({error: '网络不给力，请到“我的奖励”查看是否已抢到'})
      }
    },
  },
})
