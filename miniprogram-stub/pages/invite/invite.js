// My invite code: the mini-program code to show, a poster to save and forward, a share card
// that opens the landing page with the code as its scene, and the people I invited.
const api = require('../../utils/api.js')
const {showError, clearError} = require('../../utils/page.js')

const STAGE_TEXT = {registered: '已注册', applied: '已申请', approved: '已获批', disbursed: '已放款'}

Component({
  data: {invite: null, qrPath: '', referrals: [], error: '', busy: false},
  methods: {
    async onLoad() {
      clearError(this)
      try {
        const [invite, referrals] = await Promise.all([api.inviteCode(), api.referrals()])
        this.setData({
          invite,
          referrals: referrals.items.map((r) => ({...r, stageText: STAGE_TEXT[r.stage] || r.stage})),
          busy: false,
        })
        this.setData({qrPath: await api.inviteImage('wxacode.png', {width: 430})})
      } catch (error) {
        showError(this, error)
      }
    },

    async onPoster() {
      clearError(this)
      try {
        const poster = await api.inviteImage('poster.png')
        this.setData({busy: false})
        wx.previewImage({urls: [poster], current: poster})
      } catch (error) {
        showError(this, error)
      }
    },

    onShareAppMessage() {
      const code = this.data.invite ? this.data.invite.code : ''
      return {title: '农商银行线上贷款，随借随还', path: `/pages/index/index?scene=${encodeURIComponent(code)}`}
    },
  },
})
