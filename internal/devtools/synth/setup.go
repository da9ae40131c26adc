package synth

import (
	"cmp"
	"encoding/binary"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/costlake/costlake/internal/cur"
)

// field is a column position and its value, already CSV-encoded.
type field struct {
	col int
	val []byte
}

// enc returns s as one CSV field, quoted exactly when encoding/csv would
// quote it; nil for the empty string.
func enc(s string) []byte {
	if s == "" {
		return nil
	}
	if !needsQuotes(s) {
		return []byte(s)
	}
	b := make([]byte, 0, len(s)+4)
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// needsQuotes mirrors encoding/csv's rule for a comma-separated writer.
func needsQuotes(s string) bool {
	if s == `\.` {
		return true
	}
	if strings.ContainsAny(s, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

func encDec(v int64) []byte { return appendDec(nil, v) }

// mix is SplitMix64's finalizer: a fixed, well-spread hash of x.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return mix(h.Sum64())
}

// code returns n characters in AWS's SKU alphabet derived from h.
func code(h uint64, n int) string {
	const alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		if i%10 == 0 {
			h = mix(h + uint64(i))
		}
		b[i] = alphabet[h%uint64(len(alphabet))]
		h /= uint64(len(alphabet))
	}
	return string(b)
}

func appendHex(b []byte, x uint64, n int) []byte {
	const digits = "0123456789abcdef"
	for i := n - 1; i >= 0; i-- {
		b = append(b, digits[(x>>(4*uint(i%16)))&15])
	}
	return b
}

func uuid(h uint64) string {
	lo := mix(h ^ 0x5bd1e995)
	b := appendHex(nil, h, 8)
	b = append(b, '-')
	b = appendHex(b, h>>32, 4)
	b = append(b, '-')
	b = appendHex(b, h>>48, 4)
	b = append(b, '-')
	b = appendHex(b, lo, 4)
	b = append(b, '-')
	b = appendHex(b, lo>>16, 12)
	return string(b)
}

// cumulative turns weights into running totals for pick.
func cumulative(weights []int) []int {
	c := make([]int, len(weights))
	sum := 0
	for i, w := range weights {
		sum += w
		c[i] = sum
	}
	return c
}

// pick draws an index with probability proportional to its weight.
func pick(rng *rand.Rand, cum []int) int {
	x := rng.IntN(cum[len(cum)-1])
	return sort.SearchInts(cum, x+1)
}

type variant struct {
	idx         int
	svc         *service
	reg         *region
	rate        int64   // on-demand rate per unit, 10⁻¹⁰ USD
	nf          int64   // normalization factor, 10⁻¹⁰ units; 0 if none
	static      []field // lineItem product/usage columns and product/*
	pricing     []field // pricing/* of an on-demand line
	rateEnc     []byte
	nfEnc       []byte
	sku         string
	productCode []byte
	productName []byte
	taxDesc     []byte
	azs         [3][]byte
	names       [3][8][]byte // user:Name values by environment and number
}

type account struct {
	id   string
	enc  []byte
	team []byte
	sub  []byte // reservation/SubscriptionId
}

type reservation struct {
	variant    int
	owner      int
	count      int64
	amortized  int64 // upfront fee amortized per unit-hour
	recurring  int64 // recurring fee per unit-hour
	static     []field
	pricing    []field
	feeType    []byte // lineItem/UsageType of the RIFee line
	desc       []byte
	upfront    []byte // reservation/UpfrontValue
	recurEnc   []byte
	countEnc   []byte
	modifiable bool
}

type savingsPlan struct {
	spec       *savingsPlanSpec
	commitment int64
	upfront    int64 // amortized upfront commitment per hour
	recurring  int64 // recurring commitment per hour
	arn        []byte
	static     []field // savingsPlan/* of the recurring fee line
	eligible   []int   // variants it covers
	feeType    []byte
	desc       []byte
}

// slot is a pre-encoded identity/TimeInterval with its usage start and end.
type slot struct{ interval, start, end []byte }

// offerTerms are AWS's reserved offer term codes by years, class, option.
var offerTerms = map[string]string{
	"1standardNo Upfront": "4NA7Y494T4", "1standardPartial Upfront": "HU7G6KETJZ", "1standardAll Upfront": "6QCMYABX3D",
	"3standardNo Upfront": "BPH4J8HBKS", "3standardPartial Upfront": "38NPMPTW36", "3standardAll Upfront": "NQ3QZPMQV9",
	"1convertibleNo Upfront": "7NE97W5U4E", "1convertiblePartial Upfront": "CUZHX8X6JH", "1convertibleAll Upfront": "VJWZNREJX2",
	"3convertibleNo Upfront": "Z2E3P23VKM", "3convertiblePartial Upfront": "R5XV2EPZQZ", "3convertibleAll Upfront": "MZU6U2429S",
}

const (
	awsTime      = "2006-01-02T15:04:05.000Z"
	intervalTime = "2006-01-02T15:04:05Z"
)

func newSlot(from, to time.Time) slot {
	return slot{
		interval: []byte(from.Format(intervalTime) + "/" + to.Format(intervalTime)),
		start:    []byte(from.Format(awsTime)),
		end:      []byte(to.Format(awsTime)),
	}
}

// generator holds everything that is the same for every chunk of a delivery.
type generator struct {
	o            Options
	salt         uint64
	start, end   time.Time
	hoursInMonth int64
	variants     []variant
	variantCum   []int
	accounts     []account
	accountCum   []int
	reservations []reservation
	plans        []savingsPlan
	hours        []slot
	days         []slot
	month        slot
	firstDay     slot
	common       []field
	header       []byte
	envs         [3][]byte
	costCenters  [][]byte
	creators     [][]byte
}

func newGenerator(o Options) *generator {
	start, _ := cur.ParsePeriod(o.Period)
	end := start.AddDate(0, 1, 0)
	g := &generator{
		o:            o,
		salt:         mix(uint64(o.Seed) ^ hashString(o.Period)),
		start:        start,
		end:          end,
		hoursInMonth: int64(end.Sub(start) / time.Hour),
	}
	rng := rand.New(rand.NewPCG(uint64(o.Seed), 0x5e7a9)) // setup stream; chunks use their own
	g.buildTimes()
	g.buildVariants()
	g.buildAccounts(rng)
	g.buildReservations(rng)
	g.buildSavingsPlans(rng)

	g.common = []field{
		{cInvoicingEntity, enc("Amazon Web Services, Inc.")},
		{cBillingEntity, enc("AWS")},
		{cBillType, enc("Anniversary")},
		{cPayer, enc(o.Payer)},
		{cBPStart, []byte(start.Format(awsTime))},
		{cBPEnd, []byte(end.Format(awsTime))},
		{cCurrency, enc("USD")},
		{cLegalEntity, enc("Amazon Web Services, Inc.")},
	}
	var h []byte
	for i, c := range columns {
		if i > 0 {
			h = append(h, ',')
		}
		h = append(h, enc(c.Header())...)
	}
	g.header = append(h, '\n')
	for i, e := range environments {
		g.envs[i] = enc(e)
	}
	for _, c := range costCenters {
		g.costCenters = append(g.costCenters, enc(c))
	}
	for _, c := range creators {
		g.creators = append(g.creators, enc(c))
	}
	return g
}

func (g *generator) buildTimes() {
	for t := g.start; t.Before(g.end); t = t.Add(time.Hour) {
		g.hours = append(g.hours, newSlot(t, t.Add(time.Hour)))
	}
	for t := g.start; t.Before(g.end); t = t.AddDate(0, 0, 1) {
		g.days = append(g.days, newSlot(t, t.AddDate(0, 0, 1)))
	}
	g.month = newSlot(g.start, g.end)
	g.firstDay = slot{interval: g.days[0].interval, start: g.month.start, end: g.month.end}
}

func (g *generator) buildVariants() {
	var weights []int
	for si := range services {
		s := &services[si]
		for ri := range regions {
			r := &regions[ri]
			v := variant{idx: len(g.variants), svc: s, reg: r}
			v.rate = fixed(s.rate) * r.factor / 100
			v.rateEnc = encDec(v.rate)
			if s.nf != "" {
				v.nf = fixed(s.nf)
				v.nfEnc = encDec(v.nf)
			}
			prefix := r.prefix
			if s.forcePrefix && prefix == "" {
				prefix = r.abbrev + "-"
			}
			usageType := prefix + s.usageType
			v.sku = code(hashString(s.code+"|"+usageType+"|"+s.operation+"|"+r.code), 16)
			desc := strings.NewReplacer("{rate}", string(v.rateEnc), "{loc}", r.name).Replace(s.desc)
			v.productCode = enc(s.code)
			v.productName = enc(s.name)
			v.taxDesc = enc("Tax for product code " + s.code)
			v.static = []field{
				{cProductCode, v.productCode},
				{cUsageType, enc(usageType)},
				{cOperation, enc(s.operation)},
				{cDescription, enc(desc)},
				{cProductName, v.productName},
				{col("product/productFamily"), enc(s.family)},
				{col("product/region"), enc(r.code)},
				{col("product/regionCode"), enc(r.code)},
				{col("product/servicecode"), enc(s.svcCode)},
				{col("product/servicename"), enc(s.svcName)},
				{col("product/sku"), enc(v.sku)},
				{cPUsageType, enc(usageType)},
				{cPOperation, enc(s.operation)},
			}
			if !s.noLocation {
				v.static = append(v.static,
					field{col("product/location"), enc(r.name)},
					field{col("product/locationType"), enc("AWS Region")})
			}
			for i := 0; i+1 < len(s.attrs); i += 2 {
				val := strings.NewReplacer("{loc}", r.name, "{region}", r.code).Replace(s.attrs[i+1])
				v.static = append(v.static, field{col("product/" + s.attrs[i]), enc(val)})
			}
			v.pricing = []field{
				{cRateCode, enc(v.sku + ".JRTCKXETXF.6YS6EN2CT7")},
				{cRateID, enc(strconv.FormatUint(hashString(v.sku)%9_000_000_000+1_000_000_000, 10))},
				{cPCurrency, enc("USD")},
				{cODRate, v.rateEnc},
				{cTerm, enc("OnDemand")},
				{cUnit, enc(s.unit)},
			}
			if s.az {
				for i, z := range "abc" {
					v.azs[i] = enc(r.code + string(z))
				}
			}
			for e := range environments {
				for n := range v.names[e] {
					v.names[e][n] = enc(s.short + "-" + envShort[e] + "-" + strconv.Itoa(n+1))
				}
			}
			g.variants = append(g.variants, v)
			weights = append(weights, s.weight*r.weight)
		}
	}
	g.variantCum = cumulative(weights)
}

func (g *generator) buildAccounts(rng *rand.Rand) {
	first := cmp.Or(g.o.Member, g.o.Payer)
	ids := []string{first}
	seen := map[string]bool{first: true}
	for len(ids) < g.o.LinkedAccounts {
		id := strconv.FormatInt(100_000_000_000+rng.Int64N(900_000_000_000), 10)
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	weights := make([]int, len(ids))
	for i, id := range ids {
		team := teams[i%len(teams)]
		if i%4 == 3 {
			team = "" // not matched by any cost category rule
		}
		g.accounts = append(g.accounts, account{
			id:   id,
			enc:  enc(id),
			team: enc(team),
			sub:  enc(strconv.FormatInt(1_000_000_000+rng.Int64N(9_000_000_000), 10)),
		})
		weights[i] = 5 + 60/(i+1)
	}
	weights[0] = 8 // the payer runs a little shared tooling
	g.accountCum = cumulative(weights)
}

func (g *generator) buildReservations(rng *rand.Rand) {
	var eligible []int
	for i := range g.variants {
		v := &g.variants[i]
		if v.svc.ri && (v.reg.code == "us-east-1" || v.reg.code == "eu-west-1") {
			eligible = append(eligible, i)
		}
	}
	options := []string{"No Upfront", "Partial Upfront", "All Upfront"}
	for n := 0; n < 16; n++ {
		vi := eligible[rng.IntN(len(eligible))]
		v := &g.variants[vi]
		owner := 0
		if rng.IntN(10) < 3 {
			owner = rng.IntN(len(g.accounts))
		}
		years := 1 + 2*rng.IntN(2)
		class := "standard"
		if rng.IntN(4) == 0 {
			class = "convertible"
		}
		option := options[rng.IntN(len(options))]
		discount := map[string]int64{"1standard": 62, "1convertible": 69, "3standard": 40, "3convertible": 48}[strconv.Itoa(years)+class]
		effective := pct(v.rate, discount)
		r := reservation{variant: vi, owner: owner, count: 1 + rng.Int64N(5), modifiable: class == "convertible"}
		switch option {
		case "No Upfront":
			r.recurring = effective
		case "Partial Upfront":
			r.amortized = effective / 2
			r.recurring = effective - r.amortized
		default:
			r.amortized = effective
		}
		termHours := int64(years) * 8760
		// Start so the reservation is active for the whole period.
		back := time.Duration(24+rng.IntN(24*(365*years-40))) * time.Hour
		startT := g.start.Add(-back).Add(time.Duration(rng.IntN(3600)) * time.Second)
		endT := startT.Add(time.Duration(termHours) * time.Hour)
		acct := g.accounts[owner].id
		h := mix(g.salt ^ uint64(n)<<20)
		var arn string
		if v.svc.code == "AmazonRDS" {
			arn = "arn:aws:rds:" + v.reg.code + ":" + acct + ":ri:ri-" + startT.Format("2006-01-02-15-04-05") + "-" + strings.ToLower(code(h, 6))
		} else {
			arn = "arn:aws:ec2:" + v.reg.code + ":" + acct + ":reserved-instances/" + uuid(h)
		}
		status := "Original"
		if r.modifiable && rng.IntN(2) == 0 {
			status = "Exchanged"
		}
		r.static = []field{
			{cRARN, enc(arn)},
			{cRStartTime, enc(startT.Format(awsTime))},
			{cREndTime, enc(endT.Format(awsTime))},
		}
		r.pricing = []field{
			{cRateCode, enc(v.sku + "." + offerTerms[strconv.Itoa(years)+class+option] + ".6YS6EN2CT7")},
			{cRateID, enc(strconv.FormatUint(hashString(arn)%9_000_000_000+1_000_000_000, 10))},
			{cPCurrency, enc("USD")},
			{cTerm, enc("Reserved")},
			{cUnit, enc(v.svc.unit)},
			{cLease, enc(strconv.Itoa(years) + "yr")},
			{cOfferingClass, enc(class)},
			{cPurchaseOption, enc(option)},
		}
		r.static = append(r.static, field{cRModification, enc(status)})
		prefix := v.reg.prefix
		r.feeType = enc(prefix + "HeavyUsage:" + v.svc.instType)
		r.recurEnc = encDec(r.recurring)
		r.desc = enc("USD " + string(r.recurEnc) + " hourly fee per " + v.svc.riOS + ", " + v.svc.instType + " instance")
		r.upfront = encDec(r.amortized * termHours * r.count)
		r.countEnc = encDec(r.count * one)
		g.reservations = append(g.reservations, r)
	}
}

func (g *generator) buildSavingsPlans(rng *rand.Rand) {
	payer := g.accounts[0].id
	for i := range savingsPlanSpecs {
		s := &savingsPlanSpecs[i]
		p := savingsPlan{spec: s, commitment: fixed(s.commitment)}
		switch s.payment {
		case "No Upfront":
			p.recurring = p.commitment
		case "Partial Upfront":
			p.upfront = p.commitment / 2
			p.recurring = p.commitment - p.upfront
		default:
			p.upfront = p.commitment
		}
		for vi := range g.variants {
			v := &g.variants[vi]
			if s.family == "" && v.svc.sp || s.family != "" && v.svc.instFamily == s.family && v.reg.code == s.region {
				p.eligible = append(p.eligible, vi)
			}
		}
		back := time.Duration(24+rng.IntN(24*(365*s.years-40))) * time.Hour
		startT := g.start.Add(-back).Add(time.Duration(rng.IntN(3600)) * time.Second)
		endT := startT.AddDate(s.years, 0, 0).Add(-time.Second)
		p.arn = enc("arn:aws:savingsplans::" + payer + ":savingsplan/" + uuid(mix(g.salt^uint64(i+1)<<40)))
		term := strconv.Itoa(s.years) + "yr"
		kind, name := "ComputeSP", "Compute Savings Plan"
		regionName := ""
		if s.family != "" {
			kind, name = "EC2InstanceSP", "EC2 Instance Savings Plan"
			for _, r := range regions {
				if r.code == s.region {
					regionName = r.name
				}
			}
		}
		compact := strings.ReplaceAll(s.payment, " ", "")
		p.feeType = enc(kind + ":" + term + compact)
		desc := strconv.Itoa(s.years) + " year " + s.payment + " " + name
		if s.family != "" {
			desc += " (" + s.family + ", " + regionName + ")"
		}
		p.desc = enc(desc)
		p.static = []field{
			{cSPARN, p.arn},
			{cSPStartTime, enc(startT.Format(awsTime))},
			{cSPEndTime, enc(endT.Format(awsTime))},
			{cSPFamily, enc(s.family)},
			{cSPOfferingType, enc(s.offering)},
			{cSPPaymentOption, enc(s.payment)},
			{cSPPurchaseTerm, enc(term)},
			{cSPRegion, enc(regionName)},
		}
		g.plans = append(g.plans, p)
	}
}

// defaultAssemblyID derives a create-new-version assembly folder name, a
// delivery timestamp a few days after the period ends, from seed and period.
func defaultAssemblyID(seed int64, period string) string {
	start, _ := cur.ParsePeriod(period)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(seed))
	h := mix(hashString(period) ^ hashString(string(b[:])))
	offset := time.Duration(6*3600+int64(h%(72*3600))) * time.Second
	return start.AddDate(0, 1, 0).Add(offset).Format("20060102T150405Z")
}
