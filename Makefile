# The two commands a fresh machine needs: `make run` and `make test`.
.PHONY: run test build clean

run:
	scripts/run-dev.sh

test:
	scripts/test.sh

build:
	swift build -c release --product authd

clean:
	rm -rf .build .venv run
