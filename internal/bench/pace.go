package bench

import "time"

// Schedule paces a fixed-rate load: record i is due at Start + i/Rate.
// Latency measured from a record's due time, not from when it was finally
// sent, counts the time it waited behind a stalled system: the correction
// for coordinated omission that a closed-loop benchmark lacks.
type Schedule struct {
	Start time.Time
	Rate  float64 // records per second; 0 means as fast as possible
}

// Due returns when record i should be sent. With no rate every record is
// due at once.
func (s Schedule) Due(i int64) time.Time {
	if s.Rate <= 0 {
		return s.Start
	}
	return s.Start.Add(time.Duration(float64(i) / s.Rate * float64(time.Second)))
}
