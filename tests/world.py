"""A small service world for tests: one outlet in Shanghai, one technician, three
customers (app, SMS with filter packages on both devices and lunchtime quiet hours, phone
in Berlin)."""

from __future__ import annotations

EVERY_DAY = {d: ["08:00", "18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}

WORLD = {
    "outlets": [{"id": "o-1", "name": "Xuhui", "timezone": "Asia/Shanghai"}],
    "territories": [
        {"id": "t-1", "name": "Tianlin", "outlet_id": "o-1"},
        {"id": "t-2", "name": "Kangjian", "outlet_id": "o-1"},
    ],
    "customers": [
        {"id": "c-app", "name": "Li", "timezone": "Asia/Shanghai", "language": "zh-CN"},
        {
            "id": "c-sms",
            "name": "Wang",
            "tier": "vip",
            "channel": "sms",
            "phone": "+8613800000000",
            "timezone": "Asia/Shanghai",
            "quiet_start": "12:00",
            "quiet_end": "14:00",
        },
        {"id": "c-phone", "name": "Berg", "channel": "phone", "timezone": "Europe/Berlin"},
    ],
    "parts": [
        {"sku": "AP-HEPA-01", "name": "HEPA filter", "price_cents": 29900},
        {"sku": "WP-RO-01", "name": "RO membrane", "price_cents": 49900},
        {"sku": "AC-R32-1KG", "name": "R32, 1 kg", "price_cents": 19900},
    ],
    "technicians": [
        {
            "id": "tech-1",
            "name": "Zhang",
            "outlet_id": "o-1",
            "timezone": "Asia/Shanghai",
            "working_hours": EVERY_DAY,
            "daily_capacity": 3,
            "skills": [
                {"device_type": "purifier"},
                {"device_type": "water_purifier"},
                {"device_type": "air_conditioner"},
            ],
            "territories": ["t-1", "t-2"],
        }
    ],
    "stock": [
        {"technician_id": "tech-1", "sku": "AP-HEPA-01", "qty": 2},
        {"outlet_id": "o-1", "sku": "AP-HEPA-01", "qty": 3},
        {"outlet_id": "o-1", "sku": "WP-RO-01", "qty": 1},
        {"outlet_id": "o-1", "sku": "AC-R32-1KG", "qty": 5},
    ],
    "devices": [
        {
            "id": "ap-1",
            "device_type": "purifier",
            "serial": "SN-AP-1",
            "customer_id": "c-app",
            "territory_id": "t-1",
            "address": "1 Tianlin Rd",
        },
        {
            "id": "ap-2",
            "device_type": "purifier",
            "serial": "SN-AP-2",
            "customer_id": "c-sms",
            "territory_id": "t-1",
            "address": "2 Tianlin Rd",
        },
        {
            "id": "ap-3",
            "device_type": "purifier",
            "serial": "SN-AP-3",
            "customer_id": "c-phone",
            "territory_id": "t-2",
            "address": "3 Kangjian Rd",
        },
        {
            "id": "wp-1",
            "device_type": "water_purifier",
            "serial": "SN-WP-1",
            "customer_id": "c-sms",
            "territory_id": "t-2",
            "address": "2 Tianlin Rd",
        },
        {
            "id": "ac-1",
            "device_type": "air_conditioner",
            "serial": "SN-AC-1",
            "customer_id": "c-app",
            "territory_id": "t-1",
            "address": "1 Tianlin Rd",
        },
    ],
    "package_plans": [
        {
            "id": "care-purifier",
            "name": "Purifier filter care",
            "device_type": "purifier",
            "months": 120,  # long enough for a test run in any year
            "price_cents": 29900,
            "diy": True,
        },
        {
            "id": "care-wp",
            "name": "Water purifier filter care",
            "device_type": "water_purifier",
            "months": 120,
            "price_cents": 39900,
        },
    ],
    "packages": [
        {
            "sale_id": "s-ap-2",
            "device_id": "ap-2",
            "plan_id": "care-purifier",
            "starts_on": "2026-01-01",
        },
        {"sale_id": "s-wp-1", "device_id": "wp-1", "plan_id": "care-wp", "starts_on": "2026-01-01"},
    ],
}
