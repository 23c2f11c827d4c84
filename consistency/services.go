package consistency

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/weft-sh/weft/internal/config"
)

// Service is one entry of consistency.services: the consumer groups a
// service reads with, so weft can tell whether the service that owes an
// order's next event has read the event that should trigger it
// (docs/consistency.md, "Why is it stuck?").
type Service struct {
	// Groups are Go regular expressions matched against whole consumer
	// group names. Default (a service not listed): the groups whose name
	// equals or starts with the service's name (fulfillment →
	// fulfillment, fulfillment-svc, fulfillment.v2).
	Groups []string `yaml:"groups"`
}

// validateServices reports the problems of consistency.services: patterns
// that do not compile, and services no workflow step names as its owner
// (a typo would silently leave the owner on the default rule).
func validateServices(services map[string]Service, ws []Workflow, p *config.Problems) {
	owners := ownersOf(ws)
	for _, name := range slices.Sorted(maps.Keys(services)) {
		path := "services." + name
		if !slices.Contains(owners, name) {
			p.Addf(path, "no workflow step names %q as its owner (owners: %s)", name, strings.Join(owners, ", "))
		}
		p.CheckPatterns(path+".groups", services[name].Groups)
	}
}

// ownersOf returns the owners the workflows' steps name, sorted, once each.
func ownersOf(ws []Workflow) []string {
	var out []string
	for _, w := range ws {
		for _, st := range w.Steps {
			if st.Owner != "" {
				out = append(out, st.Owner)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// groupMap tells which consumer groups belong to which service, and which
// groups are nobody's (weft's own tap).
type groupMap struct {
	services map[string]*regexp.Regexp // configured services only; nil: no group
	ignore   map[string]bool
}

// newGroupMap compiles consistency.services (validated) and the groups to
// ignore.
func newGroupMap(services map[string]Service, ignore []string) (groupMap, error) {
	m := groupMap{services: map[string]*regexp.Regexp{}, ignore: map[string]bool{}}
	for name, s := range services {
		alts := make([]string, len(s.Groups))
		for i, g := range s.Groups {
			if _, err := regexp.Compile(g); err != nil {
				return groupMap{}, fmt.Errorf("consistency.services.%s.groups[%d]: %w", name, i, err)
			}
			alts[i] = "(?:" + g + ")"
		}
		var re *regexp.Regexp // nil: a service listed without groups has none
		if len(alts) > 0 {
			re = regexp.MustCompile("^(?:" + strings.Join(alts, "|") + ")$")
		}
		m.services[name] = re
	}
	for _, g := range ignore {
		m.ignore[g] = true
	}
	return m, nil
}

// owns reports whether group belongs to service.
func (m groupMap) owns(service, group string) bool {
	if service == "" || m.ignore[group] {
		return false
	}
	if re, ok := m.services[service]; ok {
		return re != nil && re.MatchString(group)
	}
	return strings.HasPrefix(group, service)
}

// configured reports whether service has an entry in consistency.services.
func (m groupMap) configured(service string) bool {
	_, ok := m.services[service]
	return ok
}

// ServiceGroups is what weft observes of one service that workflow steps
// name as owner: which consumer groups read the topics of the events it
// must answer, and which of them to map to it.
type ServiceGroups struct {
	Service string `json:"service"`
	// Triggers are the event types entering the steps it owns, emitted by
	// other services (what it must read to answer).
	Triggers []string `json:"triggers"`
	// Topics are where those events were stored from (dead-letter topics
	// aside), most records first.
	Topics []string `json:"topics"`
	// Readers are the groups reading one of Topics in the newest
	// queue-health sample (weft's own aside).
	Readers []string `json:"readers"`
	// Configured says whether consistency.services lists the service;
	// Mapped are the readers the configuration gives it now (its entry,
	// else the name rule).
	Configured bool     `json:"configured"`
	Mapped     []string `json:"mapped"`
	// Suggested are the groups to map to it: the mapped ones, else the
	// readers whose name mentions the service; empty when none does.
	Suggested []string `json:"suggested"`
}

// ServicesSuggestion is weft's proposal for consistency.services.
type ServicesSuggestion struct {
	// SampledAt is the queue-health sample the readers come from (zero:
	// none yet); Since is the start of the events looked at.
	SampledAt time.Time       `json:"sampled_at,omitzero"`
	Since     time.Time       `json:"since"`
	Services  []ServiceGroups `json:"services"`
}

// SuggestServices proposes consumer groups for each service that workflow
// steps name as owner, from the events stored since since (which topics
// carry the events the service answers) and the newest queue-health
// sample (which groups read them).
func (e *Engine) SuggestServices(ctx context.Context, since time.Time) (ServicesSuggestion, error) {
	triggers := map[string][]string{} // owner → event types entering its steps
	var types []string
	for _, w := range e.workflows {
		for _, st := range w.Steps {
			if st.Owner == "" {
				continue
			}
			for _, t := range st.On {
				if !slices.Contains(triggers[st.Owner], t) {
					triggers[st.Owner] = append(triggers[st.Owner], t)
				}
				if !slices.Contains(types, t) {
					types = append(types, t)
				}
			}
		}
	}
	seen, err := e.store.EventTypeTopics(ctx, types, since)
	if err != nil {
		return ServicesSuggestion{}, err
	}
	snap := e.loadSnapshot(ctx)
	if snap.err != nil {
		return ServicesSuggestion{}, fmt.Errorf("queue health: %w", snap.err)
	}
	out := ServicesSuggestion{SampledAt: snap.at, Since: since.UTC(), Services: []ServiceGroups{}}
	for _, svc := range slices.Sorted(maps.Keys(triggers)) {
		sg := ServiceGroups{Service: svc, Triggers: []string{}, Topics: []string{}, Readers: []string{}, Mapped: []string{},
			Suggested: []string{}, Configured: e.why.groups.configured(svc)}
		for _, tt := range seen {
			if !slices.Contains(triggers[svc], tt.Type) || tt.Service == svc || e.why.dlq.MatchString(tt.Topic) {
				continue
			}
			if !slices.Contains(sg.Triggers, tt.Type) {
				sg.Triggers = append(sg.Triggers, tt.Type)
			}
			if !slices.Contains(sg.Topics, tt.Topic) {
				sg.Topics = append(sg.Topics, tt.Topic)
			}
		}
		for _, topic := range sg.Topics {
			for _, g := range snap.readers[topic] {
				if !slices.Contains(sg.Readers, g) {
					sg.Readers = append(sg.Readers, g)
				}
			}
		}
		slices.Sort(sg.Readers)
		for _, g := range sg.Readers {
			if e.why.groups.owns(svc, g) {
				sg.Mapped = append(sg.Mapped, g)
			}
			if strings.Contains(strings.ToLower(g), strings.ToLower(svc)) {
				sg.Suggested = append(sg.Suggested, g)
			}
		}
		if len(sg.Mapped) > 0 {
			sg.Suggested = sg.Mapped
		}
		out.Services = append(out.Services, sg)
	}
	return out, nil
}
