package jwks

import "math/big"

// The ROCA fingerprint (Nemec et al., "The Return of Coppersmith's
// Attack", ACM CCS 2017; CVE-2017-15361). Infineon's RSALib made each prime
// of an RSA key as k·M + (65537^a mod M), with M the product of the primes
// up to 167, so that n mod M is a power of 65537 too; such keys can be
// factored. The test is the authors' exact one (the "dlog" detector of
// github.com/crocs-muni/roca): whether n mod M lies in the subgroup that
// 65537 generates modulo M, found with a discrete logarithm in each
// prime-power part of that subgroup's order (Pohlig–Hellman). A random
// modulus passes with a chance of about 2^-154, the share of that subgroup
// in the group of units modulo M.
var roca = newROCA(167, 65537)

// rocaTest is the detector's data, computed once.
type rocaTest struct {
	m     *big.Int // the product of the primes up to the bound
	g     *big.Int // the generator, 65537
	order uint64   // the order of g modulo m
	parts []uint64 // order's prime powers, whose product it is
}

// newROCA computes the detector's data for the primes up to maxPrime.
func newROCA(maxPrime, gen uint64) *rocaTest {
	var primes []uint64
	for p := uint64(2); p <= maxPrime; p++ {
		if smallPrime(p) {
			primes = append(primes, p)
		}
	}
	m := big.NewInt(1)
	var order uint64 = 1 // lcm of the orders of gen modulo each prime: they divide p-1 ≤ maxPrime
	for _, p := range primes {
		m.Mul(m, new(big.Int).SetUint64(p))
		order = lcm(order, orderMod(gen%p, p))
	}
	t := &rocaTest{m: m, g: new(big.Int).SetUint64(gen), order: order}
	for _, q := range primes {
		pq := uint64(1)
		for order/pq%q == 0 {
			pq *= q
		}
		if pq > 1 {
			t.parts = append(t.parts, pq)
		}
	}
	return t
}

// fingerprint reports whether n mod m is a power of g modulo m.
func (t *rocaTest) fingerprint(n *big.Int) bool {
	h := new(big.Int).Mod(n, t.m)
	e := new(big.Int).SetUint64(t.order)
	if new(big.Int).Exp(h, e, t.m).Cmp(big.NewInt(1)) != 0 {
		return false // not in a subgroup of g's order, or not a unit
	}
	for _, pq := range t.parts {
		e.SetUint64(t.order / pq)
		gq := new(big.Int).Exp(t.g, e, t.m) // generates the part of order pq
		hq := new(big.Int).Exp(h, e, t.m)
		x, found := big.NewInt(1), false
		for range pq {
			if x.Cmp(hq) == 0 {
				found = true
				break
			}
			x.Mul(x, gq).Mod(x, t.m)
		}
		if !found {
			return false
		}
	}
	return true
}

// hasROCAFingerprint reports whether the RSA modulus n has the structure
// of the keys Infineon's RSALib made (see roca).
func hasROCAFingerprint(n *big.Int) bool { return roca.fingerprint(n) }

func smallPrime(p uint64) bool {
	if p < 2 {
		return false
	}
	for d := uint64(2); d*d <= p; d++ {
		if p%d == 0 {
			return false
		}
	}
	return true
}

// orderMod returns the multiplicative order of a modulo the prime p.
func orderMod(a, p uint64) uint64 {
	k, x := uint64(1), a%p
	for x != 1 {
		x = x * a % p
		k++
	}
	return k
}

func lcm(a, b uint64) uint64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}
