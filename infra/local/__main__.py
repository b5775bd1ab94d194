from infra.local.cli import main

raise SystemExit(main())
