"""The payment gateway: a simulator run as its own process, the API's client, webhook signing.

Run the simulator with ``python -m api.payments``. It accepts ``POST /v1/payments`` and, after
``gateway_confirm_delay_ms``, calls the payment's ``callback_url`` with a webhook signed by
``api.payments.signing``. A payment fails on purpose when its amount has 13 cents (``50.13``) or
when the request says ``"simulate": "fail"``; every other payment succeeds.
"""
