"""Run the payment gateway simulator: ``python -m api.payments``."""

from __future__ import annotations

from api.payments.simulator import main

if __name__ == "__main__":
    main()
