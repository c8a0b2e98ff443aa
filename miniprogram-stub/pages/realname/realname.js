// Real-name verification (name, ID number, phone). The answer is a new session: the verified
// person may already be known through another door, and the session now belongs to that record.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

Component({
  data: {name: '', idNumber: '', phone: '', verified: false, customer: null, error: '', busy: false},
  methods: {
    onInput(event) {
      this.setData({[event.currentTarget.dataset.field]: event.detail.value.trim()})
    },

    async onSubmit() {
      const {name, idNumber, phone} = this.data
      if (!name || !/^\d{17}[\dXx]$/.test(idNumber) || !/^1\d{10}$/.test(phone)) {
        this.setData({error: '请填写姓名、18 位身份证号和 11 位手机号'})
        return
      }
      clearError(this)
      try {
        const answer = await api.verifyRealName({name, idNumber: idNumber.toUpperCase(), phone})
        this.setData({verified: true, customer: answer.customer, busy: false})
      } catch (error) {
        showError(this, error)
      }
    },

    onDone() {
      wx.navigateBack()
    },
  },
})
