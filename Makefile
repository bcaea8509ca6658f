# The two commands of the README, and a few helpers around them.
.PHONY: up test setup status close-day demo totp infra-start infra-stop infra-status bench chaos

up:            ## start the whole system in the foreground (Ctrl-C stops all)
	bash infra/up.sh

status:        ## each service of `make up`: state, pid, uptime, restart count
	.venv/bin/python -m infra status

demo:          ## the demo trader of the running system (made if needed): how to log in
	.venv/bin/python -m infra demo

totp:          ## the current 2FA code of the demo trader (or: make totp SECRET=<base32>)
	.venv/bin/python -m infra totp $(SECRET)

close-day:     ## close the exchange simulator's trading day now; its trade report lands for Dagster
	.venv/bin/python -m infra close-day

test:          ## lint, type-check and run every test against real Kafka and PostgreSQL
	bash infra/test.sh

setup:         ## install OS packages, Python packages and Kafka jars
	bash infra/setup.sh

infra-start:   ## start PostgreSQL and Kafka in the background
	.venv/bin/python -m infra start

infra-stop:
	.venv/bin/python -m infra stop

infra-status:
	.venv/bin/python -m infra status

chaos:         ## the chaos suite's long form: 5+ minutes of load, every process killed twice
	.venv/bin/pytest -q tests/chaos --chaos-long -p no:cacheprovider

bench:         ## measure the ceilings (pgbench, raw Kafka consumer) on the dev stack
	.venv/bin/python -m bench
