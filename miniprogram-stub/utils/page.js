// What every page does with a refusal: show the customer's words, and send them to log in
// again when the session is gone.

function showError(page, error) {
  const message = (error && error.userMessage) || '操作未成功，请稍后重试'
  page.setData({error: message, busy: false})
  if (error && error.code === 'LOGIN_REQUIRED') {
    wx.reLaunch({url: '/pages/index/index'})
  }
  return message
}

function clearError(page) {
  page.setData({error: '', busy: true})
}

const STATUS_TEXT = {
  submitted: '已提交',
  manual_review: '人工审核中',
  approved: '审批通过',
  rejected: '未通过',
  withdrawn: '已撤回',
  contracted: '已签约',
  lapsed: '已失效',
  awaiting_signatures: '待签署',
  effective: '已生效',
  expired: '已过期',
  cancelled: '已取消',
  closed: '已结清',
  active: '还款中',
  scheduled: '未到期',
  due: '今日到期',
  overdue: '已逾期',
  paid: '已还清',
}

const METHOD_TEXT = {
  equal_instalment: '等额本息',
  equal_principal: '等额本金',
  interest_only: '按月付息到期还本',
  bullet: '到期一次还本付息',
}

const CONSENT_TEXT = {
  personal_information: '个人信息授权书',
  credit_bureau: '征信查询授权书',
  tax: '涉税信息查询授权书',
  social_security: '社保信息查询授权书',
  provident_fund: '公积金信息查询授权书',
  court_records: '司法信息查询授权书',
  property_registry: '不动产信息查询授权书',
}

function statusText(status) {
  return STATUS_TEXT[status] || status
}

module.exports = {showError, clearError, statusText, STATUS_TEXT, METHOD_TEXT, CONSENT_TEXT}
