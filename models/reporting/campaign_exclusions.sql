{#-
    Exclusions over time: per campaign and delivered run, how many targeted profiles each reason
    removed, and their share of the run's audience. The same counts as each run's report.
-#}
with

runs as (

    select * from {{ ref('stg_direct_mail__runs') }}
    where status = 'delivered'

),

exclusions as (

    select * from {{ ref('stg_direct_mail__exclusions') }}

),

per_reason as (

    select
        run_id,
        reason,
        count(*) as profiles

    from exclusions
    group by run_id, reason

),

reported as (

    select
        runs.campaign,
        runs.run_id,
        runs.run_time,
        per_reason.reason,
        per_reason.profiles,
        runs.targeted,
        {{ round_to('100.0 * per_reason.profiles / nullif(runs.targeted, 0)', 2) }} as percent_of_targeted

    from runs
    inner join per_reason
        on runs.run_id = per_reason.run_id

)

select * from reported
