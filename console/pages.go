package console

import (
	"cmp"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/weft-sh/weft/consistency"
	"github.com/weft-sh/weft/internal/auth"
	"github.com/weft-sh/weft/queuehealth"
)

// statusOf is the status a data source's error answers with.
func statusOf(err error) int {
	var bad BadRequest
	var nf NotFound
	switch {
	case errors.As(err, &bad):
		return http.StatusBadRequest
	case errors.As(err, &nf):
		return http.StatusNotFound
	default:
		return http.StatusBadGateway
	}
}

// fail renders page with the data source's error above what could be
// shown.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, page string, v pageData, err error) {
	code := statusOf(err)
	if code == http.StatusBadGateway {
		c.s.Logger.Warn().Err(err).Str("page", page).Msg("console")
	}
	v.Error = err.Error()
	c.render(w, r, code, page, v)
}

// stuckView is the stuck page's data.
type stuckView struct {
	Query     url.Values
	Workflows []consistency.Workflow
	Reasons   []string
	Stuck     Stuck
	Rows      []consistency.StuckOrder
	Sort      string
	Desc      bool
	// Why counts the orders by reason, most first.
	Why []reasonCount
}

type reasonCount struct {
	Reason string
	N      int
}

// stuckSorts are the stuck list's sortable columns.
var stuckSorts = map[string]func(a, b consistency.StuckOrder) int{
	"order":    func(a, b consistency.StuckOrder) int { return cmp.Compare(a.OrderID, b.OrderID) },
	"workflow": func(a, b consistency.StuckOrder) int { return cmp.Compare(a.Workflow, b.Workflow) },
	"step":     func(a, b consistency.StuckOrder) int { return cmp.Compare(a.Step, b.Step) },
	"in_step":  func(a, b consistency.StuckOrder) int { return cmp.Compare(a.InStep, b.InStep) },
	"sla":      func(a, b consistency.StuckOrder) int { return cmp.Compare(a.SLA, b.SLA) },
	"last":     func(a, b consistency.StuckOrder) int { return cmp.Compare(a.LastEventType, b.LastEventType) },
	"at":       func(a, b consistency.StuckOrder) int { return a.LastEventTime.Compare(b.LastEventTime) },
	"owner":    func(a, b consistency.StuckOrder) int { return cmp.Compare(a.Owner, b.Owner) },
	"reason":   func(a, b consistency.StuckOrder) int { return cmp.Compare(a.Reason, b.Reason) },
}

// sortStuck orders rows by the column key (the longest stuck first when
// key is unknown or empty), ties by order id so the order is stable from
// one refresh to the next.
func sortStuck(rows []consistency.StuckOrder, key string, desc bool) (string, bool) {
	less, ok := stuckSorts[key]
	if !ok {
		key, desc, less = "in_step", true, stuckSorts["in_step"]
	}
	slices.SortStableFunc(rows, func(a, b consistency.StuckOrder) int {
		c := less(a, b)
		if desc {
			c = -c
		}
		return cmp.Or(c, cmp.Compare(a.OrderID, b.OrderID))
	})
	return key, desc
}

func (c *Console) stuckPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view := stuckView{Query: q, Workflows: c.data.Workflows, Reasons: consistency.Reasons}
	v := pageData{Title: "Stuck orders", Nav: "stuck", Page: &view}
	st, err := c.data.Stuck(r.Context(), q)
	if err != nil {
		c.fail(w, r, "stuck", v, err)
		return
	}
	view.Stuck = st
	view.Rows = slices.Clone(st.Orders)
	view.Sort, view.Desc = sortStuck(view.Rows, q.Get("sort"), q.Get("dir") == "desc")
	for reason, n := range st.Reasons {
		if reason == "" {
			reason = "not yet explained"
		}
		view.Why = append(view.Why, reasonCount{reason, n})
	}
	slices.SortFunc(view.Why, func(a, b reasonCount) int { return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.Reason, b.Reason)) })
	c.render(w, r, http.StatusOK, "stuck", v)
}

// orderView is the order page's data.
type orderView struct {
	Order Order
	Graph template.HTML
	// Active are the findings with the ack form's state.
	Findings []consistency.Finding
}

func (c *Console) orderPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v := pageData{Title: "Order " + id, Nav: "stuck"}
	o, err := c.data.Order(r.Context(), id)
	if err == nil && len(o.Events) == 0 {
		err = NotFound{fmt.Errorf("order %s: no events stored", id)}
	}
	if err != nil {
		v.Page = &orderView{Order: Order{ID: id}}
		c.fail(w, r, "order", v, err)
		return
	}
	v.Page = &orderView{Order: o, Graph: chainSVG(o.Events), Findings: o.Findings}
	c.render(w, r, http.StatusOK, "order", v)
}

// findingsView is the findings page's data.
type findingsView struct {
	Query    url.Values
	Kinds    []string
	Findings []consistency.Finding
	ByKind   []kindCount
}

type kindCount struct {
	Kind string
	N    int
}

func (c *Console) findingsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	view := findingsView{Query: q, Kinds: consistency.Kinds}
	v := pageData{Title: "Findings", Nav: "findings", Page: &view}
	fs, err := c.data.Findings(r.Context(), q)
	if err != nil {
		c.fail(w, r, "findings", v, err)
		return
	}
	view.Findings = fs
	n := map[string]int{}
	for _, f := range fs {
		n[f.Kind]++
	}
	for _, k := range consistency.Kinds {
		if n[k] > 0 {
			view.ByKind = append(view.ByKind, kindCount{k, n[k]})
		}
	}
	c.render(w, r, http.StatusOK, "findings", v)
}

func (c *Console) queuesPage(w http.ResponseWriter, r *http.Request) {
	v := pageData{Title: "Queue health", Nav: "queues"}
	rep, err := c.data.Queues(r.Context())
	v.Page = rep
	if err != nil {
		v.Page = queuehealth.Report{}
		c.fail(w, r, "queues", v, err)
		return
	}
	c.render(w, r, http.StatusOK, "queues", v)
}

// auditView is the audit page's data.
type auditView struct {
	Enabled bool
	Logs    []AuditLog
}

func (c *Console) auditPage(w http.ResponseWriter, r *http.Request) {
	view := auditView{Enabled: c.data.Audit != nil}
	v := pageData{Title: "Audit trail", Nav: "audit", Page: &view}
	if c.data.Audit != nil {
		logs, err := c.data.Audit(r.Context())
		if err != nil {
			c.fail(w, r, "audit", v, err)
			return
		}
		view.Logs = logs
	}
	c.render(w, r, http.StatusOK, "audit", v)
}

// maxAckReason bounds the reason an acknowledgement records.
const maxAckReason = 2000

// ack acknowledges a finding as the logged-in identity (the route needs
// the operator role), then goes back to the page it came from. It checks
// the CSRF token before it reads anything else: a forged request writes
// nothing.
func (c *Console) ack(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	if why := c.checkCSRF(r); why != "" {
		c.refusedPage(w, r, http.StatusForbidden, why)
		return
	}
	id, ok := auth.IdentityFrom(r.Context())
	if !ok { // the route table wraps this route: never without an identity
		c.refusedPage(w, r, http.StatusUnauthorized, "not logged in")
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	back := safeNext(r.PostFormValue("back"))
	switch {
	case reason == "":
		c.refusedPage(w, r, http.StatusBadRequest, "say why you acknowledge the finding: the reason is required")
		return
	case len(reason) > maxAckReason:
		c.refusedPage(w, r, http.StatusBadRequest, fmt.Sprintf("the reason is %d bytes long: at most %d", len(reason), maxAckReason))
		return
	}
	f, err := c.data.Acknowledge(r.Context(), id, "console "+r.RemoteAddr, r.PathValue("id"), reason)
	if err != nil {
		code := statusOf(err)
		if code == http.StatusBadGateway {
			code = http.StatusConflict
		}
		c.refusedPage(w, r, code, err.Error())
		return
	}
	c.s.Logger.Info().Str("finding", f.ID).Str("order", f.OrderID).Str("identity", id.Name).Msg("console: finding acknowledged")
	u, _ := url.Parse(back)
	q := u.Query()
	q.Set("acked", f.ID)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}
