// What scripts/check_isa_symbols.sh must reject, for its own test: a unit named as an AVX2 unit that emits a
// plain inline function of ours out of line (noinline stands for "too large to inline here").

namespace cogqat::probe {

[[gnu::noinline]] inline int shared_helper(int x) { return x * 3 + 1; }

int isa_symbols_probe(int x);
int isa_symbols_probe(int x) { return shared_helper(x); }

}  // namespace cogqat::probe
