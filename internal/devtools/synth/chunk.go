package synth

import (
	"bufio"
	"compress/gzip"
	"context"
	"io"
	"math/big"
	"math/rand/v2"
)

// kind is a line item type the generator writes.
type kind uint8

const (
	kUsage kind = iota
	kDiscountedUsage
	kSPCoveredUsage
	kSPRecurringFee
	kRIFee
	kTax
	kCredit
	kRefund
	kFee
	kSPNegation // written right after each SavingsPlanCoveredUsage line, never drawn
	numKinds
)

var kindNames = [numKinds]string{
	kUsage:           "Usage",
	kDiscountedUsage: "DiscountedUsage",
	kSPCoveredUsage:  "SavingsPlanCoveredUsage",
	kSPRecurringFee:  "SavingsPlanRecurringFee",
	kRIFee:           "RIFee",
	kTax:             "Tax",
	kCredit:          "Credit",
	kRefund:          "Refund",
	kFee:             "Fee",
	kSPNegation:      "SavingsPlanNegation",
}

// kindWeights are draws per 9,500; each SavingsPlanCoveredUsage draw writes
// two lines, so per 10,000 lines: 7,600 Usage, 600 DiscountedUsage, 500
// covered usage and 500 negations, 150 SP fees, 100 RI fees, 200 Tax,
// 150 Credit, 80 Refund, 120 Fee.
var kindCum = cumulative([]int{
	kUsage: 7600, kDiscountedUsage: 600, kSPCoveredUsage: 500, kSPRecurringFee: 150,
	kRIFee: 100, kTax: 200, kCredit: 150, kRefund: 80, kFee: 120,
})

var kindEnc = func() (e [numKinds][]byte) {
	for i, n := range kindNames {
		e[i] = enc(n)
	}
	return e
}()

// LineItemTypes lists the lineItem/LineItemType values Generate writes.
// Each appears in a delivery of a few thousand rows or more.
func LineItemTypes() []string { return append([]string(nil), kindNames[:]...) }

var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// Pre-encoded constants of the non-usage lines.
var (
	encZero          = []byte("0.0")
	encOne           = []byte("1.0")
	encHrs           = enc("Hrs")
	encSalesTax      = enc("Sales Tax")
	encSPCode        = enc("ComputeSavingsPlans")
	encSPName        = enc("Savings Plans for AWS Compute usage")
	encSupportCode   = enc("AWSSupportBusiness")
	encSupportName   = enc("AWS Support (Business)")
	encSupportType   = enc("Dollar")
	encSupportDesc   = enc("AWS Support (Business)")
	encNegationStart = []byte("SavingsPlanNegation used by AccountId : ")
	encNegationSku   = []byte(" and UsageSku : ")
	creditDescs      = [][]byte{enc("AWS Activate Credits"), enc("Promotional Credit"), enc("AWS Credits - Migration Acceleration Program")}
	refundDescs      = [][]byte{enc("Refund for service credit, Amazon EC2 SLA"), enc("Refund of overcharge"), enc("Refund for unused Reserved Instance, prorated")}
)

// resourcesPerVariant is how many distinct resources of one usage type an
// account runs in a region; resources repeat across hours as in real CURs.
const resourcesPerVariant = 12

// chunk writes the rows of one csv.gz file. Each chunk has its own random
// stream, so chunks can be generated in any order or in parallel and the
// bytes stay the same.
type chunk struct {
	g       *generator
	rng     *rand.Rand
	vals    [][]byte
	scratch []byte
	w       *bufio.Writer
	rows    []int
	sums    []big.Int
	tmp     big.Int
}

func newChunk(g *generator, index int) *chunk {
	return &chunk{
		g:       g,
		rng:     rand.New(rand.NewPCG(uint64(g.o.Seed), mix(g.salt^uint64(index+1)))),
		vals:    make([][]byte, len(columns)),
		scratch: make([]byte, 0, 4096),
		rows:    make([]int, len(g.accounts)),
		sums:    make([]big.Int, len(g.accounts)),
	}
}

// gzipLevel trades a little size for speed: CUR chunks are large and the
// generator is meant for benchmarks.
const gzipLevel = gzip.BestSpeed

// write streams the chunk's header and n rows, gzip-compressed, into dst.
func (c *chunk) write(ctx context.Context, dst io.Writer, n int) error {
	zw, err := gzip.NewWriterLevel(dst, gzipLevel)
	if err != nil {
		return err
	}
	c.w = bufio.NewWriterSize(zw, 256<<10)
	if _, err := c.w.Write(c.g.header); err != nil {
		return err
	}
	for left, check := n, 0; left > 0; check++ {
		if check&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := c.w.Write(nil); err != nil {
				return err // the store stopped reading: stop generating
			}
		}
		left -= c.next(left)
	}
	if err := c.w.Flush(); err != nil {
		return err
	}
	return zw.Close()
}

// next writes one line, or two for covered usage and its negation, and
// returns how many.
func (c *chunk) next(left int) int {
	k := kind(pick(c.rng, kindCum))
	if k == kSPCoveredUsage && left < 2 {
		k = kUsage
	}
	switch k {
	case kUsage:
		c.usage()
	case kDiscountedUsage:
		c.discountedUsage()
	case kSPCoveredUsage:
		c.savingsPlanCoveredUsage()
		return 2
	case kSPRecurringFee:
		c.savingsPlanFee()
	case kRIFee:
		c.riFee()
	case kTax:
		c.tax()
	case kCredit, kRefund:
		c.creditOrRefund(k)
	case kFee:
		c.fee()
	}
	return 1
}

// begin clears the row and fills what every line has.
func (c *chunk) begin(acct int, k kind) {
	clear(c.vals)
	c.scratch = c.scratch[:0]
	for _, f := range c.g.common {
		c.vals[f.col] = f.val
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	start := len(c.scratch)
	for i := 0; i < 4; i++ {
		x := c.rng.Uint64()
		for j := 0; j < 13; j++ {
			c.scratch = append(c.scratch, alphabet[x&31])
			x >>= 5
		}
	}
	c.vals[cLineItemID] = c.scratch[start:len(c.scratch):len(c.scratch)]
	a := &c.g.accounts[acct]
	c.vals[cAccount] = a.enc
	c.vals[cType] = kindEnc[k]
	c.vals[cRSubscriptionID] = a.sub
	c.vals[cTeam] = a.team
}

func (c *chunk) set(fields []field) {
	for _, f := range fields {
		c.vals[f.col] = f.val
	}
}

func (c *chunk) dec(col int, v int64) {
	start := len(c.scratch)
	c.scratch = appendDec(c.scratch, v)
	c.vals[col] = c.scratch[start:len(c.scratch):len(c.scratch)]
}

func (c *chunk) slot(s *slot) {
	c.vals[cTimeInterval] = s.interval
	c.vals[cStart] = s.start
	c.vals[cEnd] = s.end
}

// cost sets the unblended, blended and net rate and cost of the line.
func (c *chunk) cost(rate []byte, cost int64) {
	c.vals[cUnblendedRate] = rate
	c.vals[cBlendedRate] = rate
	c.vals[cNetRate] = rate
	c.dec(cUnblendedCost, cost)
	c.vals[cBlendedCost] = c.vals[cUnblendedCost]
	c.vals[cNetCost] = c.vals[cUnblendedCost]
}

// emit writes the row and adds its unblended cost to the account's total.
func (c *chunk) emit(acct int, cost int64) {
	line := c.w.AvailableBuffer()
	for i, v := range c.vals {
		if i > 0 {
			line = append(line, ',')
		}
		line = append(line, v...)
	}
	line = append(line, '\n')
	c.w.Write(line) // a write error sticks in the bufio.Writer; Flush reports it
	c.rows[acct]++
	if cost != 0 {
		c.tmp.SetInt64(cost)
		c.sums[acct].Add(&c.sums[acct], &c.tmp)
	}
}

func (c *chunk) account() int { return pick(c.rng, c.g.accountCum) }

func (c *chunk) hour() *slot { return &c.g.hours[c.rng.IntN(len(c.g.hours))] }

func (c *chunk) amount(v *variant) int64 {
	s := v.svc
	switch s.amount {
	case amtHours:
		if c.rng.IntN(10) == 0 {
			return (1 + c.rng.Int64N(99)) * (one / 100)
		}
		return one
	case amtMonthly:
		return (s.lo + c.rng.Int64N(s.hi-s.lo+1)) * one / c.g.hoursInMonth
	case amtLog:
		return (1 + c.rng.Int64N(9999)) * pow10[c.rng.IntN(int(s.hi)+1)]
	default:
		return (s.lo + c.rng.Int64N(s.hi-s.lo+1)) * s.step
	}
}

// resource picks one of the account's resources of the variant and fills
// its zone, ID and tags, all derived from one hash so they stay consistent.
func (c *chunk) resource(v *variant, acct, k int) {
	h := mix(c.g.salt ^ uint64(acct)<<40 ^ uint64(v.idx)<<12 ^ uint64(k))
	if v.svc.az {
		c.vals[cAZ] = v.azs[h%3]
	}
	if v.svc.res == resNone {
		return
	}
	start := len(c.scratch)
	b := c.scratch
	id, region := c.g.accounts[acct].id, v.reg.code
	arn := func(service, middle string) {
		b = append(b, "arn:aws:"...)
		b = append(b, service...)
		b = append(b, ':')
		b = append(b, region...)
		b = append(b, ':')
		b = append(b, id...)
		b = append(b, middle...)
	}
	switch v.svc.res {
	case resInstance:
		b = appendHex(append(b, "i-0"...), h, 16)
	case resVolume:
		b = appendHex(append(b, "vol-0"...), h, 16)
	case resSnapshot:
		b = appendHex(append(b, "snap-0"...), h, 16)
	case resBucket:
		b = append(b, v.svc.short...)
		b = append(b, '-')
		b = append(b, id...)
		b = appendHex(append(b, '-'), h, 6)
	case resFunction:
		arn("lambda", ":function:fn-")
		b = appendHex(b, h, 8)
	case resTask:
		arn("ecs", ":task/")
		b = appendHex(b, h, 16)
		b = appendHex(b, mix(h), 16)
	case resDB:
		arn("rds", ":db:db-")
		b = appendHex(b, h, 8)
	case resLogGroup:
		arn("logs", ":log-group:/aws/lambda/fn-")
		b = appendHex(b, h, 8)
	case resNAT:
		arn("ec2", ":natgateway/nat-0")
		b = appendHex(b, h, 16)
	case resLB:
		arn("elasticloadbalancing", ":loadbalancer/app/alb-")
		b = appendHex(b, h, 6)
		b = appendHex(append(b, '/'), mix(h), 16)
	case resTable:
		arn("dynamodb", ":table/tbl-")
		b = appendHex(b, h, 8)
	case resKey:
		arn("kms", ":key/")
		b = append(b, uuid(h)...)
	}
	c.scratch = b
	c.vals[cResourceID] = b[start:len(b):len(b)]

	t := mix(h ^ 0x7a95)
	if t%5 == 0 {
		return // untagged
	}
	env := (t >> 8) % 3
	c.vals[cTagName] = v.names[env][(t>>16)%8]
	c.vals[cTagEnv] = c.g.envs[env]
	c.vals[cTagCostCenter] = c.g.costCenters[(t>>24)%uint64(len(c.g.costCenters))]
	if n := (t >> 32) % uint64(len(c.g.creators)+1); n > 0 {
		c.vals[cTagCreatedBy] = c.g.creators[n-1]
	}
}

// usageColumns fills the usage amount and its normalized form.
func (c *chunk) usageColumns(v *variant, amount int64) {
	c.dec(cUsageAmount, amount)
	if v.nf != 0 {
		c.vals[cNormFactor] = v.nfEnc
		c.dec(cNormAmount, mulDiv(amount, v.nf))
	}
}

func (c *chunk) usage() {
	v := &c.g.variants[pick(c.rng, c.g.variantCum)]
	acct := c.account()
	c.begin(acct, kUsage)
	c.set(v.static)
	c.set(v.pricing)
	c.slot(c.hour())
	c.resource(v, acct, c.rng.IntN(resourcesPerVariant))
	amount := c.amount(v)
	c.usageColumns(v, amount)
	cost := mulDiv(amount, v.rate)
	c.cost(v.rateEnc, cost)
	c.vals[cODCost] = c.vals[cUnblendedCost]
	c.emit(acct, cost)
}

// discountedUsage is reserved-instance usage: no unblended cost; the
// amortized cost is in reservation/EffectiveCost.
func (c *chunk) discountedUsage() {
	r := &c.g.reservations[c.rng.IntN(len(c.g.reservations))]
	v := &c.g.variants[r.variant]
	acct := c.account()
	c.begin(acct, kDiscountedUsage)
	c.set(v.static)
	c.set(r.pricing)
	c.set(r.static)
	c.vals[cDescription] = r.desc
	c.vals[cODRate] = v.rateEnc
	c.slot(c.hour())
	c.resource(v, acct, c.rng.IntN(resourcesPerVariant))
	amount := c.amount(v)
	c.usageColumns(v, amount)
	c.cost(encZero, 0)
	c.dec(cODCost, mulDiv(amount, v.rate))
	amortized, recurring := mulDiv(amount, r.amortized), mulDiv(amount, r.recurring)
	c.dec(cRAmortizedForUsage, amortized)
	c.dec(cRRecurringForUsage, recurring)
	c.dec(cREffectiveCost, amortized+recurring)
	c.emit(acct, 0)
}

// riFee is a reservation's monthly recurring fee, with the period's
// amortized upfront fee and what went unused.
func (c *chunk) riFee() {
	r := &c.g.reservations[c.rng.IntN(len(c.g.reservations))]
	v := &c.g.variants[r.variant]
	acct := r.owner
	c.begin(acct, kRIFee)
	c.set(v.static)
	c.set(r.pricing)
	c.set(r.static)
	c.vals[cUsageType] = r.feeType
	c.vals[cPUsageType] = r.feeType
	c.vals[cDescription] = r.desc
	c.vals[cUnit] = encHrs
	c.slot(&c.g.month)
	hours := c.g.hoursInMonth
	amount := hours * r.count * one
	c.usageColumns(v, amount)
	cost := hours * r.count * r.recurring
	c.cost(r.recurEnc, cost)
	unused := c.rng.Int64N(16) // percent of reserved hours left unused
	upfront := hours * r.count * r.amortized
	c.dec(cRAmortizedForPeriod, upfront)
	c.dec(cRUnusedAmortized, pct(upfront, unused))
	c.dec(cRUnusedRecurring, pct(cost, unused))
	c.dec(cRUnusedQty, pct(amount, unused))
	c.dec(cRUnusedNormQty, mulDiv(pct(amount, unused), v.nf))
	c.vals[cRNumber] = r.countEnc
	c.dec(cRUnitsPerRes, hours*one)
	c.dec(cRTotalUnits, hours*r.count*one)
	c.dec(cRNormUnitsPerRes, hours*v.nf)
	c.dec(cRTotalNormUnits, hours*r.count*v.nf)
	c.vals[cRUpfrontValue] = r.upfront
	c.emit(acct, cost)
}

// savingsPlanCoveredUsage writes covered usage at the on-demand cost, with
// the Savings Plan cost in savingsPlan/SavingsPlanEffectiveCost, then the
// SavingsPlanNegation line that cancels its unblended cost.
func (c *chunk) savingsPlanCoveredUsage() {
	p := &c.g.plans[c.rng.IntN(len(c.g.plans))]
	v := &c.g.variants[p.eligible[c.rng.IntN(len(p.eligible))]]
	acct := c.account()
	s := c.hour()
	res := c.rng.IntN(resourcesPerVariant) // the negation names the same resource
	amount := c.amount(v)
	cost := mulDiv(amount, v.rate)
	spRate := pct(v.rate, p.spec.rate)

	c.begin(acct, kSPCoveredUsage)
	c.set(v.static)
	c.set(v.pricing)
	c.slot(s)
	c.resource(v, acct, res)
	c.usageColumns(v, amount)
	c.cost(v.rateEnc, cost)
	c.vals[cODCost] = c.vals[cUnblendedCost]
	c.vals[cSPARN] = p.arn
	c.dec(cSPRate, spRate)
	c.dec(cSPEffectiveCost, mulDiv(amount, spRate))
	c.emit(acct, cost)

	c.begin(acct, kSPNegation)
	c.set(v.static)
	c.slot(s)
	c.resource(v, acct, res)
	start := len(c.scratch)
	c.scratch = append(c.scratch, encNegationStart...)
	c.scratch = append(c.scratch, c.g.accounts[acct].id...)
	c.scratch = append(c.scratch, encNegationSku...)
	c.scratch = append(c.scratch, v.sku...)
	c.vals[cDescription] = c.scratch[start:len(c.scratch):len(c.scratch)]
	c.usageColumns(v, amount)
	c.dec(cUnblendedRate, -v.rate)
	c.vals[cBlendedRate] = c.vals[cUnblendedRate]
	c.vals[cNetRate] = c.vals[cUnblendedRate]
	c.dec(cUnblendedCost, -cost)
	c.vals[cBlendedCost] = c.vals[cUnblendedCost]
	c.vals[cNetCost] = c.vals[cUnblendedCost]
	c.vals[cSPARN] = p.arn
	c.dec(cSPRate, spRate)
	c.emit(acct, -cost)
}

// savingsPlanFee is one hour of a Savings Plan's commitment.
func (c *chunk) savingsPlanFee() {
	p := &c.g.plans[c.rng.IntN(len(c.g.plans))]
	c.begin(0, kSPRecurringFee)
	c.set(p.static)
	c.slot(c.hour())
	c.vals[cProductCode] = encSPCode
	c.vals[cProductName] = encSPName
	c.vals[cUsageType] = p.feeType
	c.vals[cDescription] = p.desc
	c.vals[cResourceID] = p.arn
	c.vals[cUsageAmount] = encOne
	start := len(c.scratch)
	c.scratch = appendDec(c.scratch, p.recurring)
	c.cost(c.scratch[start:len(c.scratch):len(c.scratch)], p.recurring)
	c.dec(cSPTotalCommitment, p.commitment)
	c.dec(cSPUsedCommitment, pct(p.commitment, 70+c.rng.Int64N(31)))
	c.dec(cSPAmortized, p.upfront)
	c.dec(cSPRecurring, p.recurring)
	c.emit(0, p.recurring)
}

func (c *chunk) tax() {
	v := &c.g.variants[pick(c.rng, c.g.variantCum)]
	acct := c.account()
	c.begin(acct, kTax)
	c.slot(&c.g.firstDay)
	c.vals[cProductCode] = v.productCode
	c.vals[cProductName] = v.productName
	c.vals[cDescription] = v.taxDesc
	c.vals[cTaxType] = encSalesTax
	c.vals[cUsageAmount] = encOne
	cost := (1 + c.rng.Int64N(20000)) * cent
	c.cost(nil, cost)
	c.vals[cODCost] = encZero
	c.emit(acct, cost)
}

func (c *chunk) creditOrRefund(k kind) {
	v := &c.g.variants[pick(c.rng, c.g.variantCum)]
	acct := c.account()
	c.begin(acct, k)
	c.slot(&c.g.days[c.rng.IntN(len(c.g.days))])
	c.vals[cProductCode] = v.productCode
	c.vals[cProductName] = v.productName
	c.vals[cUsageAmount] = encZero
	descs, max := creditDescs, int64(5000)
	if k == kRefund {
		descs, max = refundDescs, 20000
	}
	c.vals[cDescription] = descs[c.rng.IntN(len(descs))]
	cost := -(1 + c.rng.Int64N(max)) * cent
	c.cost(nil, cost)
	c.emit(acct, cost)
}

// fee is a monthly AWS Support charge.
func (c *chunk) fee() {
	acct := c.account()
	c.begin(acct, kFee)
	c.slot(&c.g.month)
	c.vals[cProductCode] = encSupportCode
	c.vals[cProductName] = encSupportName
	c.vals[cUsageType] = encSupportType
	c.vals[cDescription] = encSupportDesc
	c.vals[cUsageAmount] = encOne
	cost := (10000 + c.rng.Int64N(140001)) * cent
	start := len(c.scratch)
	c.scratch = appendDec(c.scratch, cost)
	c.cost(c.scratch[start:len(c.scratch):len(c.scratch)], cost)
	c.emit(acct, cost)
}
