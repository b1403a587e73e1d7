package query

import "strconv"

// Access is what a query may see of the ring: every record, or only the
// records one user's processes sent. Its zero value is AllRecords.
//
// A query limited to one user's records (OwnRecords) sees the records
// whose trusted sender uid (record.FlagCreds, from the kernel) is that
// user's, and behaves as if no other record existed: the latest N are the
// user's latest N, a follow streams only theirs, filters narrow them
// further, and a loss report (Handler.Lost, the L frame) says where the
// stream continues but not how many records were lost, since those may
// have been anybody's (lost is 0). Records without credentials are
// nobody's: only AllRecords shows them.
//
// What such a query still learns about other records is what the
// ring's sequence numbers say, which are shared by all: its records'
// numbers, the cursors it resumes from and the head in the hello are
// positions in the ring, so the distance between two of them counts the
// records the host stored in between, whoever sent them. It learns
// nothing else about them: no content, sender, time or count per user.
type Access struct {
	own bool
	uid uint32
}

// AllRecords is the access of a reader of the ring: every record.
func AllRecords() Access { return Access{} }

// OwnRecords is the access of a user outside the readers' groups: only
// the records whose trusted sender uid is uid.
func OwnRecords(uid uint32) Access { return Access{own: true, uid: uid} }

// Own reports whether a is limited to one user's records, and whose:
// (uid, true) for OwnRecords(uid), (0, false) for AllRecords.
func (a Access) Own() (uid uint32, ok bool) { return a.uid, a.own }

// String returns "all" or "own uid N".
func (a Access) String() string {
	if !a.own {
		return "all"
	}
	return "own uid " + strconv.FormatUint(uint64(a.uid), 10)
}
