"""The consent texts a customer can agree to, by purpose. A text never changes once published: a
new wording is a new version, and each consent keeps the exact text and version agreed to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ConsentText:
    purpose: str
    version: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


CURRENT: dict[str, ConsentText] = {
    c.purpose: c
    for c in (
        ConsentText("personal_information", "2026-01", "本人同意贵行依法收集、存储、使用本人的个人信息，用于身份核验、贷款申请审核与贷后管理。"),
        ConsentText("credit_bureau", "2026-01", "本人授权贵行向中国人民银行征信中心查询、报送本人的信用信息，用于贷款审批及贷后管理。"),
        ConsentText("tax", "2026-01", "本人授权贵行向税务机关查询本人及本人经营主体的纳税信息，用于贷款审批及贷后管理。"),
        ConsentText("social_security", "2026-01", "本人授权贵行查询本人的社会保险缴纳信息，用于贷款审批及贷后管理。"),
        ConsentText("provident_fund", "2026-01", "本人授权贵行查询本人的住房公积金缴存信息，用于贷款审批及贷后管理。"),
        ConsentText("court_records", "2026-01", "本人授权贵行查询本人的司法涉诉及被执行信息，用于贷款审批及贷后管理。"),
        ConsentText("property_registry", "2026-01", "本人授权贵行查询本人名下不动产登记信息，用于贷款审批及抵押登记。"),
    )
}
