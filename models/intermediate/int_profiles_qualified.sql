{#-
    One row per profile with the flags every campaign targets on: postal-mail consent, a usable postal
    address, customer activity relative to the run time; and the address as validated and normalized
    for printing (int_profiles_addressed).
-#}
with

profiles as (

    select * from {{ ref('stg_crm__profiles') }}

),

consents as (

    select * from {{ ref('stg_crm__consents') }}
    where marketing_action = 'direct_mail'

),

order_summary as (

    select * from {{ ref('int_orders_summarized') }}

),

addresses as (

    select * from {{ ref('int_profiles_addressed') }}

),

qualified as (

    select
        profiles.*,
        coalesce(order_summary.order_count, 0) as order_count,
        coalesce(order_summary.lifetime_value, 0) as lifetime_value,
        order_summary.last_ordered_at,
        coalesce(consents.consent_value, '') != 'n' as has_postal_consent,
        (
            profiles.address_line_1 is not null
            and profiles.postal_code is not null
            and profiles.city is not null
            and profiles.country_code is not null
        ) as has_usable_address,
        coalesce(
            order_summary.last_ordered_at >= {{ dbt.dateadd('day', -365, run_timestamp()) }},
            false
        ) as is_active_customer,
        coalesce(
            order_summary.last_ordered_at < {{ dbt.dateadd('day', -365, run_timestamp()) }},
            false
        ) as is_lapsed_customer,
        coalesce(addresses.is_valid_address, false) as is_valid_address,
        addresses.address_errors,
        addresses.normalized_address_line_1,
        addresses.normalized_address_line_2,
        addresses.normalized_postal_code,
        addresses.normalized_city,
        addresses.normalized_region,
        addresses.normalized_country_code,
        addresses.household_key

    from profiles
    left join consents
        on profiles.profile_id = consents.profile_id
    left join order_summary
        on profiles.profile_id = order_summary.profile_id
    left join addresses
        on profiles.profile_id = addresses.profile_id

)

select * from qualified
