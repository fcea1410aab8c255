package policy

// Values of Store.Driver (store.driver).
const (
	StoreSQLite   = "sqlite"   // DATA/warden.db, the default
	StorePostgres = "postgres" // a PostgreSQL database shared by the nodes
)

// Store is the store section (CONTRACT section 8): which database holds
// the tables of CONTRACT section 5.
type Store struct {
	// Driver is StoreSQLite (also when the section is left out) or
	// StorePostgres.
	Driver string
	// DSNFile is the absolute path of the file holding the PostgreSQL
	// connection string (it holds a password); "" with SQLite. The file is
	// read when the store is opened, never logged.
	DSNFile string
}

// store decodes the store section.
func (d *decoder) store(f fields, s *Store) {
	s.Driver = StoreSQLite
	sf, ok := d.mapping(f.get("store"), "store", []string{"driver", "dsn_file"})
	if !ok {
		return
	}
	switch drv := d.str(sf.get("driver"), "store.driver"); drv {
	case "", StoreSQLite:
	case StorePostgres:
		s.Driver = StorePostgres
	default:
		d.hintf(sf.get("driver"), "use sqlite (the default) or postgres", "unknown store.driver %q", drv)
		return
	}
	s.DSNFile = d.path(sf.get("dsn_file"), "store.dsn_file")
	switch {
	case s.Driver == StorePostgres && s.DSNFile == "" && sf.get("dsn_file") == nil:
		d.hintf(sf.at("driver"), "e.g. dsn_file: /etc/warden/pg.dsn, a file holding postgres://warden@db:5432/warden?sslmode=verify-full",
			"store.driver postgres needs store.dsn_file")
	case s.Driver == StoreSQLite && sf.get("dsn_file") != nil:
		d.hintf(sf.get("dsn_file"), "remove it, or set driver: postgres", "store.dsn_file is only for store.driver postgres")
		s.DSNFile = ""
	}
}
