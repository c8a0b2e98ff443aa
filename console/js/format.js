// Money is fen (integers) in the API; staff read yuan. No floating point touches an amount: the
// yuan and fen parts are split with integer arithmetic.

export function yuan(fen) {
  if (fen === null || fen === undefined) return "—";
  const sign = fen < 0 ? "-" : "";
  const whole = Math.abs(Math.trunc(fen));
  const integer = Math.floor(whole / 100).toLocaleString("zh-CN");
  return `${sign}¥${integer}.${String(whole % 100).padStart(2, "0")}`;
}

// "1234.5" or "1234" → 123450 fen; null for anything else (the caller says what is wrong).
export function toFen(text) {
  const match = /^\s*(\d{1,12})(?:\.(\d{1,2}))?\s*$/.exec(String(text ?? ""));
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] || "0").padEnd(2, "0"));
}

export function percentFromBps(bps) {
  if (bps === null || bps === undefined) return "—";
  return `${(bps / 100).toFixed(2)}%`;
}

export function dateTime(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  return Number.isNaN(when.getTime()) ? iso : when.toLocaleString("zh-CN", { hour12: false });
}

// How long ago an instant was, in its largest whole unit ("12 分钟", "5 小时", "3 天"): how long
// a case or a task has been waiting.
export function elapsed(iso, now = Date.now()) {
  const ms = iso ? now - new Date(iso).getTime() : NaN;
  if (Number.isNaN(ms)) return "—";
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes} 分钟`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} 小时` : `${Math.floor(hours / 24)} 天`;
}

// A <input type="datetime-local"> value (local time) as an ISO instant the API accepts.
export function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : undefined;
}

export const STATUS = {
  draft: "草稿",
  pending_approval: "待复核",
  scheduled: "已排期",
  live: "进行中",
  paused: "已暂停",
  ended: "已结束",
  manual_review: "人工审查",
  approved: "已批准",
  rejected: "已拒绝",
  open: "待处理",
  in_progress: "处理中",
  resolved: "已解决",
  escalated: "已升级",
  proposed: "待确认",
  confirmed: "已确认",
  closed: "已关闭",
};

export const statusText = (status) => STATUS[status] || status;

// Names staff read for the API's codes, shared by every page that shows them.
export const CHANNELS = { wechat_miniprogram: "微信小程序", mobile_bank: "手机银行", enterprise_bank: "企业网银", direct_bank: "直销银行", gov_platform: "政务平台" };
export const DATA_SOURCES = {
  credit_bureau: "征信",
  tax: "税务",
  court: "法院",
  social_security: "社保",
  provident_fund: "公积金",
  property: "不动产",
  bank: "本行数据",
  local: "地方数据",
  derived: "衍生指标",
};
export const REPAYMENT_METHODS = { equal_instalment: "等额本息", equal_principal: "等额本金", interest_only: "先息后本", bullet: "到期还本付息" };
