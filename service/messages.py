"""What a customer reads: each notification kind rendered in the customer's language.

Templates are per language with English as the fallback; a message's data (written
when it was queued) fills them. Adding a language is adding a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class Kind(StrEnum):
    JOB_OPENED = "job_opened"  # we are on it
    SLOT_PROPOSED = "slot_proposed"  # pick a time
    APPOINTMENT_CONFIRMED = "appointment_confirmed"  # booked (or rebooked)
    TECHNICIAN_ON_THE_WAY = "technician_on_the_way"
    COMPLETED = "completed"  # with the itemised bill
    RATING_REQUEST = "rating_request"
    FILTER_SHIPPED = "filter_shipped"  # a diy replacement's filter is on its way
    PACKAGE_RENEWAL = "package_renewal"  # the filter package ends soon, or is used up
    AIR_REPORT = "air_report"  # the household's monthly air report is ready


DEVICE_NAMES = {
    "en": {
        "purifier": "air purifier",
        "water_purifier": "water purifier",
        "air_conditioner": "air conditioner",
    },
    "zh": {"purifier": "空气净化器", "water_purifier": "净水器", "air_conditioner": "空调"},
}

TEMPLATES: Mapping[str, Mapping[Kind, str]] = {
    "en": {
        Kind.JOB_OPENED: "We noticed your {device} needs service ({title}). "
        "Job #{order_id} is open; we will propose a visit time shortly.",
        Kind.SLOT_PROPOSED: "Job #{order_id}: {technician} can come {slots}. "
        "Reply with the time that suits you, or ask for another.",
        Kind.APPOINTMENT_CONFIRMED: "Job #{order_id}: your visit is booked for {start}. "
        "Reply to change it.",
        Kind.TECHNICIAN_ON_THE_WAY: "Job #{order_id}: {technician} is on the way, "
        "arriving about {eta}.",
        Kind.COMPLETED: "Job #{order_id} is done. Bill: {bill}. Total {total}; you pay {you_pay}.",
        Kind.RATING_REQUEST: "How did we do on job #{order_id}? Rate the visit 1 to 5.",
        Kind.FILTER_SHIPPED: "Job #{order_id}: your new filter is on its way ({carrier} "
        "{tracking}). Fit it when it arrives; your {device} tells us when it is in.",
        Kind.PACKAGE_RENEWAL: "Your filter package for your {device} {ends}. "
        "Renew it in the app to keep your filters covered.",
        Kind.AIR_REPORT: "Your home's air report for {month} is ready: {label} was outside "
        "its healthy range {share} of the time. See the hours, your neighbourhood and our "
        "advice: {link}",
    },
    "zh": {
        Kind.JOB_OPENED: "我们发现您的{device}需要服务（{title}）。工单 #{order_id} "
        "已创建，稍后为您安排上门时间。",
        Kind.SLOT_PROPOSED: "工单 #{order_id}：{technician} 可在 {slots} 上门，"
        "请回复您方便的时间。",
        Kind.APPOINTMENT_CONFIRMED: "工单 #{order_id}：已为您预约 {start} 上门，如需改期请回复。",
        Kind.TECHNICIAN_ON_THE_WAY: "工单 #{order_id}：{technician} 正在路上，预计 {eta} 到达。",
        Kind.COMPLETED: (
            "工单 #{order_id} 已完成。费用明细：{bill}。合计 {total}，您需支付 {you_pay}。"
        ),
        Kind.RATING_REQUEST: "请为工单 #{order_id} 的服务打分（1–5 星）。",
        Kind.FILTER_SHIPPED: "工单 #{order_id}：新滤芯已寄出（{carrier} {tracking}），"
        "收到后请自行更换，{device}会自动告诉我们。",
        Kind.PACKAGE_RENEWAL: "您的{device}滤芯套餐{ends}，请在 App 中续订以继续享受保障。",
        Kind.AIR_REPORT: "您家 {month} 的空气报告已生成：{label}有 {share} 的时间超出健康范围。"
        "查看各时段数据、周边对比和建议：{link}",
    },
}


def _lang(language: str) -> str:
    base = language.split("-", maxsplit=1)[0].lower()
    return base if base in TEMPLATES else "en"


def _money(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


def _when(iso: str, timezone: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(timezone)).strftime("%a %d %b %H:%M")


# a bill line someone else pays, as the customer reads it
PAID_BY: Mapping[str, Mapping[str, str]] = {
    "en": {"maker": " (warranty)", "package": " (filter package)"},
    "zh": {"maker": "（保修）", "package": "（滤芯套餐）"},
}


def render(kind: Kind, data: Mapping[str, Any], *, language: str, timezone: str) -> str:
    """The text for the customer, times in their own time zone."""
    lang = _lang(language)
    fields: dict[str, Any] = {
        "order_id": data.get("order_id", "?"),
        "title": data.get("title", ""),
        "technician": data.get("technician", "our technician"),
        "device": DEVICE_NAMES[lang].get(str(data.get("device_type")), "device"),
    }
    if "slots" in data:
        fields["slots"] = ", ".join(_when(s, timezone) for s in data["slots"])
    if "start" in data:
        fields["start"] = _when(data["start"], timezone)
    if "eta" in data:
        fields["eta"] = _when(data["eta"], timezone)
    if "share_out" in data:
        fields["share"] = f"{100 * float(data['share_out']):.0f} %"
        label = data.get("label") or {}
        fields["label"] = label.get(lang) or label.get("en") or data.get("metric", "")
    for key in ("carrier", "tracking", "month", "link"):
        if key in data:
            fields[key] = data[key]
    if "ends_on" in data:
        left = data.get("remaining")
        ends = {"en": f"ends on {data['ends_on']}", "zh": f"将于 {data['ends_on']} 到期"}
        used = {"en": "has no replacement left", "zh": "的更换次数已用完"}
        fields["ends"] = (used if left == 0 else ends)[lang]
    if "lines" in data:
        paid_by = PAID_BY[lang]
        fields["bill"] = "; ".join(
            f"{line[0]} {_money(line[1])}" + paid_by.get(line[2] if len(line) > 2 else "", "")
            for line in data["lines"]
        )
        fields["total"] = _money(int(data.get("total_cents", 0)))
        fields["you_pay"] = _money(int(data.get("customer_cents", data.get("total_cents", 0))))
    return TEMPLATES[lang][kind].format_map(_Missing(fields))


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"
