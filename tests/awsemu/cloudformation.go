package awsemu

import (
	"encoding/xml"
	"fmt"
	"slices"
	"time"
)

// CloudFormation: awsQuery (form-encoded POST, Action=<Op>&Version=2010-05-15,
// XML responses in namespace http://cloudformation.amazonaws.com/doc/2010-05-15/),
// signing name "cloudformation". Operations: DescribeStacks,
// DescribeStackEvents.

const cfnNamespace = "http://cloudformation.amazonaws.com/doc/2010-05-15/"

// Stack is a CloudFormation stack as DescribeStacks returns it.
type Stack struct {
	StackName         string
	StackId           string // default arn:aws:cloudformation:<Region>:<AccountID>:stack/<StackName>/<uuid>
	Description       string
	StackStatus       string // e.g. CREATE_IN_PROGRESS, CREATE_COMPLETE, ROLLBACK_COMPLETE
	StackStatusReason string
	CreationTime      time.Time // default: when first put
	LastUpdatedTime   time.Time
	Parameters        []Parameter
	Outputs           []Output
	Capabilities      []string // e.g. CAPABILITY_NAMED_IAM
	Tags              []Tag
}

// Parameter is a stack parameter.
type Parameter struct {
	ParameterKey   string `xml:"ParameterKey"`
	ParameterValue string `xml:"ParameterValue"`
}

// Output is a stack output.
type Output struct {
	OutputKey   string `xml:"OutputKey"`
	OutputValue string `xml:"OutputValue"`
	Description string `xml:"Description,omitempty"`
	ExportName  string `xml:"ExportName,omitempty"`
}

// Tag is a key-value tag.
type Tag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// StackEvent is one entry of a stack's event log.
type StackEvent struct {
	EventId              string // default: generated
	StackId              string // set by the emulator
	StackName            string // set by the emulator
	LogicalResourceId    string // e.g. CostlakeRole; the stack name for stack events
	PhysicalResourceId   string
	ResourceType         string    // e.g. AWS::IAM::Role
	Timestamp            time.Time // default: now
	ResourceStatus       string    // e.g. CREATE_IN_PROGRESS, CREATE_FAILED
	ResourceStatusReason string
}

type cfnStack struct {
	Stack
	events []StackEvent // oldest first
}

type cfnState struct {
	stacks []*cfnStack // creation order
}

// find returns the stack named or identified by nameOrID; a deleted stack
// is found by its ID only, as in AWS.
func (c *cfnState) find(nameOrID string) *cfnStack {
	for i := len(c.stacks) - 1; i >= 0; i-- {
		st := c.stacks[i]
		if st.StackId == nameOrID || (st.StackName == nameOrID && st.StackStatus != "DELETE_COMPLETE") {
			return st
		}
	}
	return nil
}

// PutStack creates the stack, or replaces the live stack of the same name
// (keeping its StackId, CreationTime and events when st leaves them
// empty). A new stack gets a first stack event with its status and reason
// ("User Initiated" if none). It returns the stack as stored.
func (s *Server) PutStack(st Stack) Stack {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UTC()
	old := s.cfn.find(st.StackName)
	if old != nil && st.StackId != "" && st.StackId != old.StackId {
		old = nil
	}
	if old != nil {
		if st.StackId == "" {
			st.StackId = old.StackId
		}
		if st.CreationTime.IsZero() {
			st.CreationTime = old.CreationTime
		}
		old.Stack = st
		return st
	}
	if st.StackId == "" {
		st.StackId = fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/%s", Region, AccountID, st.StackName, newUUID())
	}
	if st.CreationTime.IsZero() {
		st.CreationTime = now
	}
	cs := &cfnStack{Stack: st}
	reason := st.StackStatusReason
	if reason == "" {
		reason = "User Initiated"
	}
	cs.addEvent(StackEvent{
		LogicalResourceId:    st.StackName,
		PhysicalResourceId:   st.StackId,
		ResourceType:         "AWS::CloudFormation::Stack",
		Timestamp:            st.CreationTime,
		ResourceStatus:       st.StackStatus,
		ResourceStatusReason: reason,
	})
	s.cfn.stacks = append(s.cfn.stacks, cs)
	return st
}

// SetStackStatus moves a stack to status with reason (e.g.
// ROLLBACK_COMPLETE, "The following resource(s) failed to create: [Role].")
// and logs the matching stack event. It fails the test for an unknown stack.
func (s *Server) SetStackStatus(stackName, status, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cfn.find(stackName)
	if st == nil {
		s.tb.Errorf("awsemu: SetStackStatus: no stack %q", stackName)
		return
	}
	st.StackStatus, st.StackStatusReason = status, reason
	if status != "CREATE_COMPLETE" && status != "CREATE_IN_PROGRESS" {
		st.LastUpdatedTime = time.Now().UTC()
	}
	st.addEvent(StackEvent{
		LogicalResourceId:    st.StackName,
		PhysicalResourceId:   st.StackId,
		ResourceType:         "AWS::CloudFormation::Stack",
		ResourceStatus:       status,
		ResourceStatusReason: reason,
	})
}

// AddStackEvents appends events (oldest first) to a stack's log, e.g. a
// resource's CREATE_FAILED with its ResourceStatusReason.
// DescribeStackEvents returns the log newest first. It fails the test for
// an unknown stack.
func (s *Server) AddStackEvents(stackName string, events ...StackEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cfn.find(stackName)
	if st == nil {
		s.tb.Errorf("awsemu: AddStackEvents: no stack %q", stackName)
		return
	}
	for _, e := range events {
		st.addEvent(e)
	}
}

// GetStack returns the stack named or identified by nameOrID.
func (s *Server) GetStack(nameOrID string) (Stack, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.cfn.find(nameOrID)
	if st == nil {
		return Stack{}, false
	}
	return st.Stack, true
}

func (st *cfnStack) addEvent(e StackEvent) {
	if e.EventId == "" {
		e.EventId = newUUID()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = time.Now().UTC()
	}
	e.StackId, e.StackName = st.StackId, st.StackName
	st.events = append(st.events, e)
}

type xmlStack struct {
	StackId           string
	StackName         string
	Description       string      `xml:",omitempty"`
	Parameters        []Parameter `xml:"Parameters>member,omitempty"`
	CreationTime      string
	LastUpdatedTime   string `xml:",omitempty"`
	StackStatus       string
	StackStatusReason string   `xml:",omitempty"`
	DisableRollback   bool     `xml:"DisableRollback"`
	Outputs           []Output `xml:"Outputs>member,omitempty"`
	Capabilities      []string `xml:"Capabilities>member,omitempty"`
	Tags              []Tag    `xml:"Tags>member,omitempty"`
}

func toXMLStack(st Stack) xmlStack {
	x := xmlStack{
		StackId:           st.StackId,
		StackName:         st.StackName,
		Description:       st.Description,
		Parameters:        st.Parameters,
		CreationTime:      isoTime(st.CreationTime),
		StackStatus:       st.StackStatus,
		StackStatusReason: st.StackStatusReason,
		Outputs:           st.Outputs,
		Capabilities:      st.Capabilities,
		Tags:              st.Tags,
	}
	if !st.LastUpdatedTime.IsZero() {
		x.LastUpdatedTime = isoTime(st.LastUpdatedTime)
	}
	return x
}

type xmlStackEvent struct {
	StackId              string
	EventId              string
	StackName            string
	LogicalResourceId    string
	PhysicalResourceId   string `xml:",omitempty"`
	ResourceType         string
	Timestamp            string
	ResourceStatus       string
	ResourceStatusReason string `xml:",omitempty"`
}

func init() {
	register(&service{
		signingName:  "cloudformation",
		xmlNamespace: cfnNamespace,
		accessDenied: "AccessDenied",
		ops: map[string]handler{
			"DescribeStacks":      cfnDescribeStacks,
			"DescribeStackEvents": cfnDescribeStackEvents,
		},
	})
}

func cfnNoStack(name string) *apiError {
	return errorf("ValidationError", "Stack with id %s does not exist", name)
}

func cfnDescribeStacks(s *Server, r *request) (any, *apiError) {
	var stacks []Stack
	if name := r.form.Get("StackName"); name != "" {
		st := s.cfn.find(name)
		if st == nil {
			return nil, cfnNoStack(name)
		}
		stacks = append(stacks, st.Stack)
	} else {
		for _, st := range slices.Backward(s.cfn.stacks) {
			if st.StackStatus != "DELETE_COMPLETE" {
				stacks = append(stacks, st.Stack)
			}
		}
	}
	stacks, next, ok := page(s, r.Operation, stacks, r.form.Get("NextToken"), 0)
	if !ok {
		return nil, errorf("ValidationError", "Invalid NextToken")
	}
	out := struct {
		XMLName   xml.Name   `xml:"DescribeStacksResult"`
		Stacks    []xmlStack `xml:"Stacks>member,omitempty"`
		NextToken string     `xml:",omitempty"`
	}{NextToken: next}
	for _, st := range stacks {
		out.Stacks = append(out.Stacks, toXMLStack(st))
	}
	return out, nil
}

func cfnDescribeStackEvents(s *Server, r *request) (any, *apiError) {
	name := r.form.Get("StackName")
	if name == "" {
		return nil, errorf("ValidationError", "1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	st := s.cfn.find(name)
	if st == nil {
		return nil, cfnNoStack(name)
	}
	newest := slices.Clone(st.events)
	slices.Reverse(newest)
	events, next, ok := page(s, r.Operation, newest, r.form.Get("NextToken"), 0)
	if !ok {
		return nil, errorf("ValidationError", "Invalid NextToken")
	}
	out := struct {
		XMLName     xml.Name        `xml:"DescribeStackEventsResult"`
		StackEvents []xmlStackEvent `xml:"StackEvents>member,omitempty"`
		NextToken   string          `xml:",omitempty"`
	}{NextToken: next}
	for _, e := range events {
		out.StackEvents = append(out.StackEvents, xmlStackEvent{
			StackId:              e.StackId,
			EventId:              e.EventId,
			StackName:            e.StackName,
			LogicalResourceId:    e.LogicalResourceId,
			PhysicalResourceId:   e.PhysicalResourceId,
			ResourceType:         e.ResourceType,
			Timestamp:            isoTime(e.Timestamp),
			ResourceStatus:       e.ResourceStatus,
			ResourceStatusReason: e.ResourceStatusReason,
		})
	}
	return out, nil
}
