# pipelines/sw.mk — reusable, content-addressed pipeline stages over the sw tools.
#
# Include it from your own Makefile, describe each stage with variables named after the tool's
# options (NAME.<option>, exactly the --option of the tool), then declare it:
#
#     include /path/to/sw/pipelines/sw.mk
#     SW_OUT := out/exp1
#     data.tokenizer := data/tokenizers/demo-bpe2k
#     data.dataset   := data/alpaca_en/alpaca_sample.jsonl.gz
#     data.packing   := true
#     $(call sw_pack,data)
#     sft.model      := out/base-model
#     sft.dataset    := @data                # @NAME: the artifact of stage NAME (@NAME:val, ...)
#     sft.tuner_type := lora
#     $(call sw_train,sft)
#     all: $(SW_STAMP.sft)
#
# Stages: sw_pack, sw_train, sw_merge (sw-quant merge-lora), sw_quantize, sw_gguf, sw_eval
# (sw-eval bench, or the ZeroMQ farm with NAME.WORKERS), sw_fetch, sw_cmd (any shell command),
# sw_serve (phony serve-NAME / serve-NAME-start / serve-NAME-stop), and sw_report (a comparison
# table of runs). Each stage writes into $(SW_OUT)/NAME/: the tool's outputs and run.json (tool
# version, git revision, full options, input and output hashes, wall time, peak memory, metrics).
# Lower-case NAME.<x> are the tool's options; upper-case NAME.<X> are sw.mk's settings
# (COMMAND, INPUTS, ARTIFACTS for sw_cmd; WORKERS, BIND for sw_eval; REPO, FILES for sw_fetch;
# VOLATILE, DEPS for all). An optional second argument names templates whose options the stage
# inherits (its own win): $(call sw_train,lr1/sft,sft) takes every sft.<x> it does not set.
#
# Make's target for a stage is the stamp $(SW_OUT)/NAME/.sw/stamp-<hash of its options>; its
# prerequisites are the upstream stamps and the input files named in its options. When Make finds
# one newer, scripts/sw-stage compares the stage's content key (tool version, options, SHA-256 of
# every input) with the one in run.json and runs the tool only when it differs; `make -n` prints,
# for every stage that would run, why. Details, the sweep pattern and the recipes: docs/pipelines.md.
# This file defines variables and functions only (no default goal), so the top-level GNUmakefile's
# `-include pipelines/*.mk` is safe.

ifndef SW_MK_INCLUDED
SW_MK_INCLUDED := 1

SW_MK_DIR   := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SW_ROOT     ?= $(abspath $(SW_MK_DIR)/..)
SW_BIN      ?= $(if $(BIN),$(abspath $(BIN)),$(SW_ROOT)/bin)
SW_OUT      ?= out
SW_STAGE    ?= $(SW_ROOT)/scripts/sw-stage
SW_REPORT   ?= $(SW_ROOT)/scripts/sw-report
# What of a tool's version keys its stages: version (sw-train 0.1.0), build (with the git revision
# the tool was built from: every rebuild from a new commit reruns everything) or none.
SW_TOOL_KEY ?= version
# SW_CHECK=1: let every stage compare its key by content (after a tool upgrade, or after editing an
# input that Make cannot see, such as a file inside an input folder added after parsing).
SW_CHECK    ?=

SW_SETTINGS := COMMAND INPUTS ARTIFACTS VOLATILE WORKERS BIND REPO FILES DEPS
SW_STAGES   :=
SW_STAMPS   :=

sw__empty :=
sw__space := $(sw__empty) $(sw__empty)
sw__comma := ,
sw__hash  := \#
sw__dollar := $$
define sw__nl


endef

# shell single-quoting; escaping of $ and # for text that goes through $(eval)
sw__q   = '$(subst ','\'',$1)'
sw__esc = $(subst $(sw__hash),\$(sw__hash),$(subst $(sw__dollar),$(sw__dollar)$(sw__dollar),$1))

sw__prog.pack     := sw-pack
sw__prog.train    := sw-train
sw__prog.merge    := sw-quant
sw__prog.quantize := sw-quant
sw__prog.gguf     := sw-quant
sw__prog.eval     := sw-eval
sw__prog.fetch    := sw-fetch
sw__prog.serve    := sw-serve
sw__prog.cmd      :=

# $(call sw_path,data/x): a file of the sw tree, relative when make runs in the tree's top folder
sw_path = $(patsubst $(CURDIR)/%,%,$(SW_ROOT)/$1)
# $(call sw_stamps,NAME...): the stamps of stages (targets to depend on)
sw_stamps = $(foreach n,$1,$(SW_STAMP.$n))
# $(call sw_dirs,NAME...): their output folders
sw_dirs = $(foreach n,$1,$(SW_DIR.$n))

# The variables NAME.<key> that exist now; their keys; a value's comma-separated elements.
sw__vars = $(sort $(filter $1.%,$(.VARIABLES)))
sw__keys = $(patsubst $1.%,%,$(call sw__vars,$1))
sw__elems = $(if $(filter 1,$(words $1)),$(subst $(sw__comma),$(sw__space),$1))
sw__nohash = $(firstword $(subst $(sw__hash),$(sw__space),$1))

# @NAME[:ARTIFACT] -> the upstream stage's name; -> @DIR[:ARTIFACT]
sw__refname = $(firstword $(subst :,$(sw__space),$(patsubst @%,%,$1)))
sw__refsub  = $(word 2,$(subst :,$(sw__space),$(patsubst @%,%,$1)))
sw__refdir  = $(if $(SW_DIR.$(call sw__refname,$1)),@$(SW_DIR.$(call sw__refname,$1))$(if $(call sw__refsub,$1),:$(call sw__refsub,$1)),$(error sw.mk: stage '$2' refers to $1, but no stage '$(call sw__refname,$1)' is declared before it))

# A value with its references resolved (values with spaces are taken as they are).
sw__resolve = $(if $(filter 1,$(words $2)),$(subst $(sw__space),$(sw__comma),$(strip $(foreach e,$(call sw__elems,$2),$(if $(filter @%,$e),$(call sw__refdir,$e,$1),$e)))),$2)
# INPUTS is a space-separated list: its words are its elements.
sw__inwords = $(if $(filter INPUTS,$2),$($1.INPUTS),$(call sw__elems,$($1.$2)))
sw__inkeys = $(filter-out $(filter-out INPUTS,$(SW_SETTINGS)),$(call sw__keys,$1))
sw__refs   = $(sort $(foreach k,$(call sw__inkeys,$1),$(foreach e,$(call sw__inwords,$1,$k),$(if $(filter @%,$e),$(call sw__refname,$e)))))
sw__glob   = $(findstring *,$1)$(findstring ?,$1)$(findstring [,$1)
sw__rawins = $(sort $(foreach k,$(call sw__inkeys,$1),$(foreach e,$(call sw__inwords,$1,$k),$(if $(filter @%,$e)$(call sw__glob,$e),,$(wildcard $(call sw__nohash,$e))))))
# files of the raw inputs (folders listed recursively)
sw__infiles = $(foreach p,$1,$(if $(wildcard $p/.),$(shell find '$p' -type f ! -path '*/.git/*' ! -path '*/.sw/*' ! -path '*/.sw-cache/*' 2>/dev/null | LC_ALL=C sort),$p))

# the order-only prerequisite on the tool when the including Makefile can build it (sw's own)
sw__tooldep = $(if $(sw__prog.$1),$(foreach t,$(TOOLS),$(if $(filter $(abspath $(SW_BIN)/$(sw__prog.$1)),$(abspath $t)),$t)))

# inherit the options of template T that stage N does not set
sw__inherit = $(foreach k,$(call sw__keys,$2),$(if $(filter undefined,$(origin $1.$k)),$(eval $1.$k = $$($2.$k))))

sw__checkname = $(if $(findstring %,$1)$(findstring :,$1)$(findstring $(sw__space),$1),$(error sw.mk: bad stage name '$1' (no %, : or spaces)),$(if $(SW_DIR.$1),$(error sw.mk: stage '$1' is declared twice)))

# the text of a stage's options and settings as the key of its stamp's name
sw__optstext = $(call sw__q,tool=$2) $(call sw__q,dir=$(SW_OUT)/$1) $(foreach k,$(call sw__keys,$1),$(call sw__q,$k=$(call sw__resolve,$1,$($1.$k))))

# $(call sw__stage,NAME,TOOL,TEMPLATES): declares the stage.
sw__stage = $(strip \
  $(call sw__checkname,$1) \
  $(eval sw__goal := $(.DEFAULT_GOAL)) \
  $(foreach t,$3,$(call sw__inherit,$1,$t)) \
  $(eval SW_DIR.$1 := $(SW_OUT)/$1) \
  $(eval sw__tool.$1 := $2) \
  $(eval sw__upstream.$1 := $(call sw__refs,$1)) \
  $(eval SW_HASH.$1 := $(shell printf '%s\n' $(call sw__optstext,$1,$2) | sha256sum | cut -c1-20)) \
  $(eval SW_STAMP.$1 := $(SW_DIR.$1)/.sw/stamp-$(SW_HASH.$1)) \
  $(eval sw__prereq.$1 := $(call sw_stamps,$(sw__upstream.$1)) $(call sw__infiles,$(call sw__rawins,$1)) $($1.DEPS)) \
  $(eval SW_STAGES += $1) \
  $(eval SW_STAMPS += $(SW_STAMP.$1)) \
  $(eval $(call sw__rules,$1,$2)) \
  $(eval .DEFAULT_GOAL := $(sw__goal)))

define sw__rules
$(SW_STAMP.$1): $(sw__prereq.$1) $(if $(SW_CHECK),sw-force) $(if $(call sw__tooldep,$2),| $(call sw__tooldep,$2))
	+@$$(SW_STAGE) why $(SW_HASH.$1) $$?
	@$$(SW_STAGE) run $(SW_HASH.$1)
$(call sw__env,$(SW_STAMP.$1),$1,$2)
endef

# The environment of a stage's recipe, as target-specific exported variables named after the
# stage's id (its options' hash): GNU make also exports a target's variables to the recipes of its
# prerequisites (even `private` ones), so each stage reads only the variables with its own id.
define sw__env
$1: private export SW_$(SW_HASH.$2)_NAME := $2
$1: private export SW_$(SW_HASH.$2)_TOOL := $3
$1: private export SW_$(SW_HASH.$2)_DIR := $(SW_DIR.$2)
$1: private export SW_$(SW_HASH.$2)_ROOT := $(SW_OUT)
$1: private export SW_$(SW_HASH.$2)_BIN := $(SW_BIN)
$1: private export SW_$(SW_HASH.$2)_STAMP := $(SW_STAMP.$2)
$1: private export SW_$(SW_HASH.$2)_REFSTAMPS := $(call sw_stamps,$(sw__upstream.$2))
$1: private export SW_$(SW_HASH.$2)_TOOL_KEY := $(SW_TOOL_KEY)
$(foreach k,$(call sw__keys,$2),$1: private export SW_$(SW_HASH.$2)_$(if $(filter $(SW_SETTINGS),$k),S,O)_$k := $(call sw__esc,$(if $(filter INPUTS,$k),$(foreach e,$($2.INPUTS),$(call sw__resolve,$2,$e)),$(call sw__resolve,$2,$($2.$k))))$(sw__nl))
endef

# The stages. $(call sw_<kind>,NAME[,TEMPLATE...])
sw_pack     = $(call sw__stage,$1,pack,$2)
sw_train    = $(call sw__stage,$1,train,$2)
sw_merge    = $(call sw__stage,$1,merge,$2)
sw_quantize = $(call sw__stage,$1,quantize,$2)
sw_gguf     = $(call sw__stage,$1,gguf,$2)
sw_eval     = $(call sw__stage,$1,eval,$2)
sw_fetch    = $(call sw__stage,$1,fetch,$2)
sw_cmd      = $(call sw__stage,$1,cmd,$2)

# $(call sw_serve,NAME[,TEMPLATE...]): phony serve-NAME (foreground), serve-NAME-start (background,
# returns when /health answers; URL in $(SW_OUT)/NAME/server.json) and serve-NAME-stop.
sw_serve = $(strip \
  $(call sw__checkname,$1) \
  $(eval sw__goal := $(.DEFAULT_GOAL)) \
  $(foreach t,$2,$(call sw__inherit,$1,$t)) \
  $(eval SW_DIR.$1 := $(SW_OUT)/$1) \
  $(eval sw__upstream.$1 := $(call sw__refs,$1)) \
  $(eval SW_HASH.$1 := $(shell printf '%s\n' $(call sw__optstext,$1,serve) | sha256sum | cut -c1-20)) \
  $(eval $(call sw__serve_rules,$1)) \
  $(eval .DEFAULT_GOAL := $(sw__goal)))

define sw__serve_rules
.PHONY: serve-$1 serve-$1-start serve-$1-stop
serve-$1 serve-$1-start: $(call sw_stamps,$(sw__upstream.$1)) $(if $(call sw__tooldep,serve),| $(call sw__tooldep,serve))
serve-$1:
	@$$(SW_STAGE) serve $(SW_HASH.$1)
serve-$1-start:
	@$$(SW_STAGE) serve $(SW_HASH.$1) --background
serve-$1-stop:
	@$$(SW_STAGE) serve $(SW_HASH.$1) --stop
$(foreach t,serve-$1 serve-$1-start serve-$1-stop,$(call sw__env,$t,$1,serve)$(sw__nl))
endef

# $(call sw_report,FILE,PATHS,STAGES): FILE.md and FILE.csv comparing the runs in PATHS (a stage
# folder is one row; a folder of stage folders, such as one point of a sweep, is one row), rebuilt
# when any of STAGES reruns.
sw_report = $(eval sw__goal := $(.DEFAULT_GOAL))$(eval $(call sw__report_rules,$1,$2,$3))$(eval .DEFAULT_GOAL := $(sw__goal))
define sw__report_rules
$1.md: $(call sw_stamps,$3)
	@$$(SW_REPORT) --md $1.md --csv $1.csv $2
endef

sw__goal := $(.DEFAULT_GOAL)
.PHONY: sw-force
sw-force:
.DEFAULT_GOAL := $(sw__goal)

endif
