# evmgmt: PGXS build.
#
# The install script sql/evmgmt--$(EXTVERSION).sql is assembled from the readable
# per-concern sources in sql/install/ (numbered so that the order is explicit).
# Upgrade scripts sql/evmgmt--A--B.sql are written by hand, one per release.

EXTENSION   = evmgmt
EXTVERSION  = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)

MODULE_big  = evmgmt
OBJS        = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

INSTALL_SQL = sql/$(EXTENSION)--$(EXTVERSION).sql
DATA        = $(INSTALL_SQL) $(filter-out $(INSTALL_SQL),$(wildcard sql/$(EXTENSION)--*.sql))
EXTRA_CLEAN = $(INSTALL_SQL) results regression.diffs regression.out

# Regression suites: every test/sql/NAME.sql, expected output in expected/NAME.out.
REGRESS      = $(patsubst test/sql/%.sql,%,$(sort $(wildcard test/sql/*.sql)))
REGRESS_OPTS = --inputdir=test --load-extension=evmgmt

CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null || curl-config --cflags)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || curl-config --libs)

MHD_CFLAGS  := $(shell pkg-config --cflags libmicrohttpd)
MHD_LIBS    := $(shell pkg-config --libs libmicrohttpd)

PG_CPPFLAGS = -Isrc $(CURL_CFLAGS) $(MHD_CFLAGS)
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
              -Wno-sign-compare -Wno-cast-function-type
SHLIB_LINK  = $(CURL_LIBS) $(MHD_LIBS) -lm

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

all: $(INSTALL_SQL)

$(INSTALL_SQL): $(sort $(wildcard sql/install/*.sql)) $(EXTENSION).control
	cat $(sort $(wildcard sql/install/*.sql)) > $@

include $(PGXS)

# PGXS tracks no header dependencies (unless the server was configured with
# --enable-depend): every object is rebuilt when a header of src/ changes, so
# that no file keeps an old layout of a shared struct.
$(OBJS): $(wildcard src/*.h)

.PHONY: test demo
test:
	bash test/run.sh
demo:
	bash test/demo.sh
