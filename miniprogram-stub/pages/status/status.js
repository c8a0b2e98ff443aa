// Where an application stands, with the plain reasons the customer is given; an approved one
// goes on to its contract.
const api = require('../../utils/api.js')
const {showError, clearError, statusText} = require('../../utils/page.js')

Component({
  data: {id: 0, application: null, error: '', busy: false},
  methods: {
    onLoad(query) {
      this.setData({id: Number(query.id)})
      return this.load()
    },

    async load() {
      clearError(this)
      try {
        const application = await api.application(this.data.id)
        this.setData({
          busy: false,
          application: {
            ...application,
            statusText: statusText(application.status),
            amountText: api.money.yuanText(application.amount_yuan),
            limitText: api.money.yuanText(application.limit_yuan),
            rateText: application.annual_rate_bps === null ? '' : api.money.rateText(application.annual_rate_bps),
          },
        })
      } catch (error) {
        showError(this, error)
      }
    },

    async onContract() {
      clearError(this)
      const id = this.data.id
      try {
        let contractId
        if (this.data.application.status === 'contracted') {
          const mine = await api.contracts()
          const found = mine.items.find((c) => c.application_id === id && c.my_role === 'borrower')
          contractId = found && found.id
        } else {
          const contract = await api.requestContract(id, [], {key: api.actionKey(this, 'contract', id)})
          api.actionDone(this, 'contract')
          contractId = contract.id
        }
        this.setData({busy: false})
        if (contractId) wx.navigateTo({url: `/pages/contract/contract?id=${contractId}`})
      } catch (error) {
        showError(this, error)
      }
    },
  },
})
