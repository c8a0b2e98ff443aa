// One product: what it asks of the applicant, and a quote (no credit-bureau inquiry) before
// applying. Amounts here are whole yuan, as the lending API takes them.
const api = require('../../utils/api.js')
const {showError, clearError, METHOD_TEXT} = require('../../utils/page.js')
const {consentsFor, ticked, grantTicked} = require('../../utils/consents.js')

const OUTCOME_TEXT = {approved: '预计可以获批', manual_review: '需要人工审核', rejected: '暂不符合条件'}

Component({
  data: {
    code: '',
    product: null,
    amount: '',
    term: '',
    methods: [],
    methodIndex: 0,
    consents: [],
    quote: null,
    error: '',
    busy: false,
  },
  methods: {
    async onLoad(query) {
      this.setData({code: query.code})
      clearError(this)
      try {
        const product = await api.product(query.code)
        this.setData({
          product,
          amount: String(product.amount_yuan.min),
          term: String(product.term_months.max),
          methods: product.repayment_methods.map((m) => ({value: m, label: METHOD_TEXT[m] || m})),
          consents: await consentsFor(product),
          busy: false,
        })
      } catch (error) {
        showError(this, error)
      }
    },

    onAmount(event) {
      this.setData({amount: event.detail.value})
    },
    onTerm(event) {
      this.setData({term: event.detail.value})
    },
    onConsents(event) {
      this.setData({consents: ticked(this.data.consents, event.detail.value)})
    },
    onMethod(event) {
      this.setData({methodIndex: Number(event.detail.value)})
    },

    loanRequest() {
      const amountYuan = api.money.yuanFromInput(this.data.amount)
      const termMonths = Number(this.data.term)
      if (!amountYuan || !Number.isInteger(termMonths) || termMonths < 1) {
        this.setData({error: '请填写整数金额（元）和期限（月）'})
        return null
      }
      return {amountYuan, termMonths, repaymentMethod: this.data.methods[this.data.methodIndex].value}
    },

    async onQuote() {
      const loan = this.loanRequest()
      if (!loan) return
      if (this.data.consents.some((c) => !c.checked)) {
        this.setData({error: '测算需要查询您的信息，请先阅读并同意授权书'})
        return
      }
      clearError(this)
      try {
        this.setData({consents: await grantTicked(this, this.data.consents)})
        const quote = await api.quote(this.data.code, loan)
        this.setData({
          busy: false,
          quote: {
            ...quote,
            outcomeText: OUTCOME_TEXT[quote.outcome] || quote.outcome,
            limitText: api.money.yuanText(quote.limit_yuan),
            rateText: api.money.rateText(quote.annual_rate_bps),
            aprText: api.money.rateText(quote.apr_bps),
          },
        })
      } catch (error) {
        showError(this, error)
      }
    },

    onApply() {
      const loan = this.loanRequest()
      if (!loan) return
      wx.navigateTo({
        url: `/pages/apply/apply?code=${this.data.code}&amount=${loan.amountYuan}&term=${loan.termMonths}&method=${loan.repaymentMethod}`,
      })
    },
  },
})
