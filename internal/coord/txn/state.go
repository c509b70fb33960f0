package txn

// State is a transaction's status, with Kafka's TransactionState byte
// values: they are written in __transaction_state records, so they must
// not change.
type State int8

const (
	StateEmpty             State = 0
	StateOngoing           State = 1
	StatePrepareCommit     State = 2
	StatePrepareAbort      State = 3
	StateCompleteCommit    State = 4
	StateCompleteAbort     State = 5
	StateDead              State = 6
	StatePrepareEpochFence State = 7
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// String is the name DescribeTransactions and ListTransactions report.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "Unknown"
}

// ParseState is the state named (as in ListTransactions' state filter).
func ParseState(name string) (State, bool) {
	for i, n := range stateNames {
		if n == name {
			return State(i), true
		}
	}
	return 0, false
}

// validPrevious lists, for each state, the states a transaction may move
// to it from: Kafka's TransactionState.validPreviousStates. Every
// transition the shard makes is checked against it, so a bug shows up as
// an error instead of a record Kafka's coordinator would refuse to load.
var validPrevious = map[State][]State{
	StateEmpty:             {StateEmpty, StateCompleteCommit, StateCompleteAbort},
	StateOngoing:           {StateOngoing, StateEmpty, StateCompleteCommit, StateCompleteAbort},
	StatePrepareCommit:     {StateOngoing},
	StatePrepareAbort:      {StateOngoing, StatePrepareEpochFence},
	StateCompleteCommit:    {StatePrepareCommit},
	StateCompleteAbort:     {StatePrepareAbort},
	StateDead:              {StateEmpty, StateCompleteAbort, StateCompleteCommit},
	StatePrepareEpochFence: {StateOngoing},
}

func canTransition(from, to State) bool {
	for _, s := range validPrevious[to] {
		if s == from {
			return true
		}
	}
	return false
}

// completed reports whether no transaction is open or being ended.
func (s State) completed() bool {
	return s == StateEmpty || s == StateCompleteCommit || s == StateCompleteAbort
}
