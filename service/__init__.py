"""The service loop: work orders and everything around them.

Intake and the lifecycle (`orders`, `lifecycle`), dispatch, appointments, SLA, completion
on site, callback and settlement, customer notifications, self-service, KPIs, the parts
forecast, and the service registry (outlets, territories, customers, technicians, parts
and stock, where each device is). Built on `db` (tables) and `fleet` (the devices).
"""
