//! `make simulate`: a day at 1,000, 10,000 and 100,000 projects, a table for each on the smallest
//! plan that holds every bound of capacity.md.

fn main() {
    // `simulate --plan=600 --leases=2 10000`: one day on a given plan (and leases).
    let plan: Option<u32> = std::env::args().find_map(|a| a.strip_prefix("--plan=").and_then(|p| p.parse().ok()));
    let leases: u32 =
        std::env::args().find_map(|a| a.strip_prefix("--leases=").and_then(|p| p.parse().ok())).unwrap_or(1);
    let sizes: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.replace(',', "").parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000] } else { sizes };
    for projects in sizes {
        let load = simulate::Load::at(projects);
        let report = match plan {
            Some(plan) => simulate::day(load, simulate::Settings::on(plan).with_leases(leases), 7),
            None => simulate::smallest_plan(load, 7),
        };
        println!("{}", report.table());
        let plan_given = plan;
        let plan = report.calls_per_minute;
        let verdict = if !report.holds() {
            format!("no plan up to {} calls a minute holds every bound", simulate::thousands(plan.into()))
        } else if plan <= 1_200 {
            format!(
                "VendorCallsPerMinute={plan} (the service's own plan), ReconcileMaxCalls={}, ReconcilerLeases={}",
                report.pass_calls, report.leases
            )
        } else {
            format!(
                "VendorCallsPerMinute={plan}, ReconcileMaxCalls={}, ReconcilerLeases={} — beyond the service's largest published plan (1,200): a higher limit must be agreed with it",
                report.pass_calls, report.leases
            )
        };
        println!("Plan needed for {} projects: {verdict}\n", simulate::thousands(projects.into()));
        if plan_given.is_none()
            && let Some((name, _)) = simulate::SIZES.iter().find(|(_, n)| *n == projects)
        {
            println!("deploy/sizes/{name}.params:\n```\n{}```\n", simulate::parameter_file(name, &load, &report));
        }
    }
}
