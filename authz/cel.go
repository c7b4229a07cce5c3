package authz

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/checker"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/operators"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// ConditionCostLimit bounds what one evaluation of a rule's condition
// (match.when, require.when) may cost, in CEL's cost units (about one per
// operation, a tenth per byte a string function reads). An evaluation that
// exceeds it is a denial, condition_failed; a condition whose estimated
// worst case exceeds it (claims and query strings as large as
// celInputBound, 1024 headers) is refused at load.
const ConditionCostLimit = 1_000_000

// ConditionTimeLimit bounds how long one evaluation of a metered condition
// (one whose cost grows with what it reads: a loop, matches, split) may
// take: past it, the evaluation stops at its next loop iteration, a
// denial (condition_failed).
const ConditionTimeLimit = 5 * time.Millisecond

// conditionInterruptEvery is how many loop iterations a metered condition
// runs between looks at its deadline.
const conditionInterruptEvery = 32

// celInputBound is what the cost estimate takes as the largest string,
// list or map of a request or a token: 64 KiB, Envoy's limit on a request's
// headers.
const celInputBound = 64 << 10

// celMaxHeaders is the estimate's number of headers (extauthz reads at most
// 1024).
const celMaxHeaders = 1024

// errCondition is wrapped by a condition's compile errors.
var errCondition = errors.New("condition")

// condition is a rule's compiled CEL expression, and what it reads.
type condition struct {
	expr string // as written, or as split wrote a part back
	prg  cel.Program
	// claims are the top-level claims it reads by name (claims.org,
	// claims["org"]); allClaims says it reads claims as a whole
	// (claims.exists(…), size(claims), claims[k]).
	claims    []string
	allClaims bool
	scopes    bool
	provider  bool
	path      bool // it reads request.path
	// metered says its cost depends on the size of what it reads: each
	// evaluation is metered, and stopped past ConditionCostLimit. The
	// cost of one that is not is bounded by its estimate.
	metered bool
	// token and rest are a require.when that is a conjunction, split
	// (split): token is the && of the clauses that read the token alone,
	// evaluated once per grant (newCELGrant); rest is the && of the
	// others (nil: none), evaluated on each check. token is nil when no
	// clause reads the token alone, and c itself when every one does.
	token, rest *condition
	// slot is the bit of token's outcome in a grant made under the
	// policy that holds c (celNeeds.add); -1: none, c is evaluated whole.
	slot int
}

// celEnvs are the environments of require.when (claims, scopes, provider
// and request) and match.when (request only).
var celEnvs = sync.OnceValues(func() ([2]*cel.Env, error) {
	request := []cel.EnvOption{
		ext.Strings(),
		cel.EnableMacroCallTracking(), // so that split can write a clause back
		cel.Variable("request.method", cel.StringType),
		cel.Variable("request.host", cel.StringType),
		cel.Variable("request.path", cel.StringType),
		cel.Variable("request.query", cel.MapType(cel.StringType, cel.ListType(cel.StringType))),
		cel.Variable("request.headers", cel.MapType(cel.StringType, cel.StringType)),
	}
	match, err := cel.NewEnv(request...)
	if err != nil {
		return [2]*cel.Env{}, err
	}
	req, err := match.Extend(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("scopes", cel.ListType(cel.StringType)),
		cel.Variable("provider", cel.StringType),
	)
	return [2]*cel.Env{req, match}, err
})

// compileCondition compiles expr, a require.when (or, with inMatch, a
// match.when) expression: it must parse, type-check to a bool, read only
// the variables its place has, and cost at most ConditionCostLimit at
// worst. Errors say where in expr (line and column, from 1).
func compileCondition(expr string, inMatch bool) (*condition, error) {
	return compileConditionLimit(expr, inMatch, ConditionCostLimit)
}

// compileConditionLimit is compileCondition with a cost limit of limit.
func compileConditionLimit(expr string, inMatch bool, limit uint64) (*condition, error) {
	c, parsed, err := compileExpr(expr, inMatch, limit)
	if err != nil {
		return nil, err
	}
	if !inMatch {
		c.split(parsed, limit)
	}
	return c, nil
}

// compileExpr compiles expr as compileConditionLimit does, without
// splitting it; it returns its parsed form too.
func compileExpr(expr string, inMatch bool, limit uint64) (*condition, *ast.AST, error) {
	envs, err := celEnvs()
	if err != nil {
		return nil, nil, err
	}
	env := envs[0]
	if inMatch {
		env = envs[1]
	}
	parsed, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, nil, celIssue(expr, iss)
	}
	if inMatch {
		if err := requestOnly(expr, parsed.NativeRep()); err != nil {
			return nil, nil, err
		}
	}
	checked, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, nil, celIssue(expr, iss)
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) {
		return nil, nil, fmt.Errorf("%w: %s is not a bool (compare it: == true, != \"\")", errCondition, t)
	}
	c := &condition{expr: expr, slot: -1}
	if err := c.reads(expr, checked.NativeRep()); err != nil {
		return nil, nil, err
	}
	est, err := env.EstimateCost(checked, celSizes{})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errCondition, err)
	}
	if est.Max > limit {
		return nil, nil, fmt.Errorf("%w: may cost up to %d, more than the limit of %d (on a 64 KiB claim, query or header)", errCondition, est.Max, limit)
	}
	opts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if huge, err := env.EstimateCost(checked, celSizes{bound: 1 << 40}); err != nil || huge != est {
		// Its cost grows with what it reads, whose size the estimate
		// can only assume: metered at run time.
		opts = append(opts, cel.CostLimit(limit), cel.InterruptCheckFrequency(conditionInterruptEvery))
		c.metered = true
	}
	c.prg, err = env.Program(checked, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errCondition, err)
	}
	return c, parsed.NativeRep(), nil
}

// split prepares c, a require.when, to be evaluated in two parts when it
// is a conjunction some of whose clauses read the token alone (claims,
// scopes, provider; never request): c.token, their &&, and c.rest, the &&
// of the others. A condition holds only when it is true, and a && b is
// true exactly when a and b are, whatever order they are evaluated in: c
// holds when both parts do. A part that does not compile (it should)
// leaves c whole.
func (c *condition) split(parsed *ast.AST, limit uint64) {
	var token, rest []string
	for _, clause := range conjuncts(parsed.Expr()) {
		s, err := cel.ExprToString(clause, parsed.SourceInfo())
		if err != nil {
			return
		}
		if readsRequest(parsed, clause) {
			rest = append(rest, "("+s+")")
		} else {
			token = append(token, "("+s+")")
		}
	}
	switch {
	case len(token) == 0:
		return
	case len(rest) == 0:
		c.token = c
		return
	}
	tc, _, err := compileExpr(strings.Join(token, " && "), false, limit)
	if err != nil {
		return
	}
	rc, _, err := compileExpr(strings.Join(rest, " && "), false, limit)
	if err != nil {
		return
	}
	c.token, c.rest = tc, rc
}

// conjuncts lists the operands of e's top-level &&s, e if it has none.
func conjuncts(e ast.Expr) []ast.Expr {
	if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == operators.LogicalAnd {
		var out []ast.Expr
		for _, a := range e.AsCall().Args() {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []ast.Expr{e}
}

// readsRequest reports whether the parsed expression e may read request:
// whether it names it anywhere (in a comprehension too, where the name
// may be a loop variable's: it is then taken as read).
func readsRequest(a *ast.AST, e ast.Expr) bool {
	for _, id := range ast.MatchDescendants(ast.NavigateExpr(a, e), ast.KindMatcher(ast.IdentKind)) {
		if strings.HasPrefix(strings.TrimPrefix(id.AsIdent(), "."), "request") {
			return true
		}
	}
	return false
}

// celIssue is the first of iss's errors, located in expr.
func celIssue(expr string, iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return fmt.Errorf("%w: %w", errCondition, iss.Err())
	}
	e := errs[0]
	return fmt.Errorf("%w: %s: %s", errCondition, celWhere(expr, e.Location.Line(), e.Location.Column()+1), strings.TrimSuffix(e.Message, " (in container '')"))
}

// celWhere names a place in expr: its column, and its line if expr has
// more than one.
func celWhere(expr string, line, col int) string {
	if strings.Contains(strings.TrimRight(expr, "\n"), "\n") {
		return fmt.Sprintf("line %d, column %d", line, col)
	}
	return fmt.Sprintf("column %d", col)
}

// at names where e starts in expr. (A qualified name's place is its last
// dot's: request.headers is at .headers.)
func at(expr string, a *ast.AST, e ast.Expr) string {
	loc := a.SourceInfo().GetStartLocation(e.ID())
	col := loc.Column() + 1
	if e.Kind() == ast.IdentKind {
		col -= max(strings.LastIndexByte(e.AsIdent(), '.'), 0)
	}
	return celWhere(expr, loc.Line(), col)
}

// requestOnly refuses a match.when that names claims, scopes or provider:
// a rule is chosen before any token is read.
func requestOnly(expr string, a *ast.AST) error {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.IdentKind)) {
		switch n := e.AsIdent(); n {
		case "claims", "scopes", "provider":
			return fmt.Errorf("%w: %s: %s is not available in match.when, which is evaluated before the token is read (only request is; use require.when)", errCondition, at(expr, a, e), n)
		}
	}
	return nil
}

// reads records what the checked expression reads: the claims it names,
// or all of them, and whether it reads scopes and provider. It refuses
// request.headers used otherwise than by name (request.headers["x-id"],
// "x-id" in request.headers): a request's headers cannot be listed.
func (c *condition) reads(expr string, a *ast.AST) error {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.IdentKind)) {
		switch e.AsIdent() {
		case "scopes":
			c.scopes = true
		case "provider":
			c.provider = true
		case "request.path":
			c.path = true
		case "claims":
			name, ok := byName(e)
			if !ok {
				name, ok = inLiteral(e) // "org" in claims
			}
			switch {
			case !ok:
				c.allClaims = true
			case !containsString(c.claims, name):
				c.claims = append(c.claims, name)
			}
		case "request.headers":
			if _, ok := byName(e); !ok && !inOperand(e) {
				return fmt.Errorf("%w: %s: request.headers can only be read by name (request.headers[\"x-name\"], \"x-name\" in request.headers)", errCondition, at(expr, a, e))
			}
		}
	}
	return nil
}

// byName returns the key of the map e when its parent reads one entry of
// it by a constant name: e.name, has(e.name), e["name"].
func byName(e ast.NavigableExpr) (string, bool) {
	p, ok := e.Parent()
	if !ok {
		return "", false
	}
	switch p.Kind() {
	case ast.SelectKind:
		return p.AsSelect().FieldName(), true
	case ast.CallKind:
		call := p.AsCall()
		args := call.Args()
		if call.FunctionName() != operators.Index || len(args) != 2 || args[0].ID() != e.ID() || args[1].Kind() != ast.LiteralKind {
			return "", false
		}
		s, ok := args[1].AsLiteral().(types.String)
		return string(s), ok
	}
	return "", false
}

// inLiteral returns the key of `"key" in e`.
func inLiteral(e ast.NavigableExpr) (string, bool) {
	if !inOperand(e) {
		return "", false
	}
	p, _ := e.Parent()
	key := p.AsCall().Args()[0]
	if key.Kind() != ast.LiteralKind {
		return "", false
	}
	s, ok := key.AsLiteral().(types.String)
	return string(s), ok
}

// inOperand reports whether e is the map of `key in e`.
func inOperand(e ast.NavigableExpr) bool {
	p, ok := e.Parent()
	if !ok || p.Kind() != ast.CallKind {
		return false
	}
	call := p.AsCall()
	args := call.Args()
	return call.FunctionName() == operators.In && len(args) == 2 && args[1].ID() == e.ID()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// celSizes bounds the sizes of what a condition reads, for its cost
// estimate: every string, list and map of a request or a token at bound
// (0: celInputBound), the headers at celMaxHeaders.
type celSizes struct{ bound uint64 }

// EstimateSize implements checker.CostEstimator.
func (s celSizes) EstimateSize(n checker.AstNode) *checker.SizeEstimate {
	if p := n.Path(); len(p) == 1 && p[0] == "request.headers" && s.bound == 0 {
		return &checker.SizeEstimate{Min: 0, Max: celMaxHeaders}
	}
	return &checker.SizeEstimate{Min: 0, Max: cmp.Or(s.bound, celInputBound)}
}

// EstimateCallCost implements checker.CostEstimator: CEL's own estimates.
func (celSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// compileConditions compiles rc's match.when and require.when into ru, and
// prepares their denials: their descriptions name the rule by its index,
// never a value of the token or the request.
func (ru *rule) compileConditions(i int, rc RuleConfig) error {
	if rc.Match.When != "" {
		c, err := compileCondition(rc.Match.When, true)
		if err != nil {
			return ruleError(i, "match.when", "%w", err)
		}
		ru.matchWhen = c
		failed := *ru
		failed.num = int32(i) + 1
		failed.failDenial = newDenial(ReasonConditionFailed, "", fmt.Sprintf("rule %d match condition failed", i), "")
		ru.whenFailed = &failed
	}
	if rc.Require.When != "" {
		c, err := compileCondition(rc.Require.When, false)
		if err != nil {
			return ruleError(i, "require.when", "%w", err)
		}
		ru.when = c
		ru.whenDenial = newDenial(ReasonConditionFailed, "", fmt.Sprintf("rule %d condition not met", i), "")
	}
	return nil
}

// selects returns, for a request whose other match fields ru matches, the
// rule it selects: ru if ru has no match.when or it holds, nil if it is
// false (the next rules are tried), ru.whenFailed if it fails.
func (ru *rule) selects(r *Request, path string) *rule {
	if ru.matchWhen == nil {
		return ru
	}
	switch ru.matchWhen.test(r, path, true, nil) {
	case types.True:
		return ru
	case types.False:
		return nil
	}
	return ru.whenFailed
}
